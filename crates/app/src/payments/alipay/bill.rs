//! Alipay's trade bill (`alipay.data.dataservice.bill.downloadurl.query`, `bill_type=trade`): the call answers a
//! short-lived `bill_download_url`; the file behind it is the day's 业务明细 CSV: `#` comment lines around a
//! header row and one row per trade (`业务类型` 交易) or refund (退款), fields padded with tabs, amounts in yuan,
//! then a summary (`#交易合计：N笔，商家实收：X元…`, `#退款合计：…`).
//!
//! The file Alipay serves is a zip ([`read_bill_file`]) holding that CSV (`…_业务明细.csv`) and a summary
//! (`…_业务明细(汇总).csv`), both in GBK, their names in GBK too (the zip's UTF-8 flag unset): the detail is the
//! one read, its own summary lines checked against its rows. A plain CSV (UTF-8, or GBK) is read as well.

use super::notification::parse_beijing;
use crate::payments::port::BillLine;
use encoding_rs::GBK;
use std::borrow::Cow;
use std::io::Read;
use tuangou_domain::money::Fen;

/// The most a bill's detail file may hold once unzipped (a guard against a zip that inflates without end).
const MAX_DETAIL_BYTES: u64 = 256 * 1024 * 1024;

/// GBK text (Alipay's bills), or UTF-8 when it is that (a BOM, or valid UTF-8 throughout).
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, String> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let (text, had_errors) = GBK.decode_without_bom_handling(bytes);
    if had_errors { Err("the bill is neither UTF-8 nor GBK text".into()) } else { Ok(text) }
}

/// The 业务明细 CSV of the file behind `bill_download_url`, as text: the detail file of the zip Alipay serves, or
/// the file itself when it is a plain CSV.
pub fn read_bill_file(bytes: &[u8]) -> Result<String, String> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return decode(bytes).map(Cow::into_owned);
    }
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("the bill's zip cannot be read: {e}"))?;
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).map_err(|e| format!("the bill's zip cannot be read: {e}"))?;
        let name = decode(file.name_raw()).map_err(|_| "a file of the bill's zip has a name in no known encoding")?;
        if !name.ends_with("_业务明细.csv") {
            continue; // the 汇总 summary (its figures are the detail's footer again)
        }
        let mut detail = Vec::new();
        file.by_ref()
            .take(MAX_DETAIL_BYTES + 1)
            .read_to_end(&mut detail)
            .map_err(|e| format!("the bill's detail cannot be unzipped: {e}"))?;
        if detail.len() as u64 > MAX_DETAIL_BYTES {
            return Err("the bill's detail is larger than this adapter reads".into());
        }
        return decode(&detail).map(Cow::into_owned);
    }
    Err("the bill's zip holds no 业务明细 detail file".into())
}

/// The columns this adapter reads, by name in the header row.
const TRADE_NO: &str = "支付宝交易号";
const OUT_TRADE_NO: &str = "商户订单号";
const KIND: &str = "业务类型";
const FINISHED: &str = "完成时间";
const AMOUNT: &str = "订单金额（元）";
const RECEIVED: &str = "商家实收（元）";
const OUT_REQUEST_NO: &str = "退款批次号/请求号";

/// Yuan text that may carry a sign (refund rows are negative), as fen and whether it was negative.
fn signed_yuan(text: &str) -> Option<(Fen, bool)> {
    match text.strip_prefix('-') {
        Some(rest) => Fen::parse_yuan(rest).map(|fen| (fen, true)),
        None => Fen::parse_yuan(text).map(|fen| (fen, false)),
    }
}

/// The count and 商家实收 total of a summary line such as `#交易合计：3笔，商家实收：59.70元，…`.
fn summary(line: &str) -> Option<(usize, i64)> {
    let (_, rest) = line.split_once('：')?;
    let (count, rest) = rest.split_once('笔')?;
    let (_, rest) = rest.split_once("商家实收：")?;
    let (total, _) = rest.split_once('元')?;
    let (fen, negative) = signed_yuan(total.trim())?;
    Some((count.trim().parse().ok()?, if negative { -fen.get() } else { fen.get() }))
}

/// The lines of a 业务明细 CSV, its summary checked against them.
pub fn parse_bill(raw: &str) -> Result<Vec<BillLine>, String> {
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let cells = |line: &str| -> Vec<String> { line.split(',').map(|c| c.trim().to_owned()).collect() };
    let mut rows = raw.lines().map(str::trim_end).filter(|l| !l.is_empty());
    let header = rows
        .by_ref()
        .find(|line| !line.starts_with('#'))
        .map(cells)
        .ok_or("not an Alipay trade bill: no header row")?;
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| format!("not an Alipay trade bill: no column {name}"))
    };
    let (trade_no, out_trade_no, kind, finished) =
        (column(TRADE_NO)?, column(OUT_TRADE_NO)?, column(KIND)?, column(FINISHED)?);
    let (amount, received, out_request_no) = (column(AMOUNT)?, column(RECEIVED)?, column(OUT_REQUEST_NO)?);
    let (mut lines, mut sums) = (Vec::new(), [(0_usize, 0_i64), (0, 0)]);
    let mut summaries = [None, None];
    for row in rows {
        if let Some(comment) = row.strip_prefix('#') {
            if comment.starts_with("交易合计") {
                summaries[0] = Some(summary(comment).ok_or_else(|| format!("a summary line not understood: {row}"))?);
            } else if comment.starts_with("退款合计") {
                summaries[1] = Some(summary(comment).ok_or_else(|| format!("a summary line not understood: {row}"))?);
            }
            continue;
        }
        let c = cells(row);
        if c.len() != header.len() {
            return Err(format!("a bill row has {} fields, not {}", c.len(), header.len()));
        }
        let at = parse_beijing(&c[finished]).ok_or_else(|| format!("not a time: {:?}", c[finished]))?;
        let (value, _) = signed_yuan(&c[amount]).ok_or_else(|| format!("not yuan: {:?}", c[amount]))?;
        let (got, got_negative) = signed_yuan(&c[received]).ok_or_else(|| format!("not yuan: {:?}", c[received]))?;
        let got = if got_negative { -got.get() } else { got.get() };
        match c[kind].as_str() {
            "交易" => {
                sums[0] = (sums[0].0 + 1, sums[0].1 + got);
                lines.push(BillLine::Payment {
                    at,
                    out_trade_no: c[out_trade_no].clone(),
                    provider_trade_id: c[trade_no].clone(),
                    amount: value,
                });
            }
            "退款" => {
                sums[1] = (sums[1].0 + 1, sums[1].1 + got);
                lines.push(BillLine::Refund {
                    at,
                    out_trade_no: c[out_trade_no].clone(),
                    out_refund_no: c[out_request_no].clone(),
                    provider_refund_id: format!("{}/{}", c[trade_no], c[out_request_no]),
                    amount: value,
                });
            }
            other => return Err(format!("unknown 业务类型 {other:?}")),
        }
    }
    for (sum, said) in sums.iter().zip(summaries) {
        if said.is_some_and(|said| said != *sum) {
            return Err("the bill's summary does not add up to its rows".into());
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "#支付宝业务明细查询\n#账号：[20880000000000000156]\n\
#起始日期：[2025年11月27日 00:00:00]   终止日期：[2025年11月28日 00:00:00]\n\
#-----------------------------------------业务明细列表----------------------------------------\n\
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n\
2025112722001400001\t,p1\t,交易\t,四人火锅\t,2025-11-27 01:00:00,2025-11-27 01:00:05,\t,\t,\t,\t,xud***@126.com\t,19.90,19.90,0.00,0.00,0.00,0.00,0.00,\t,0.00,0.00,\t,-0.12,0.00,\t\n\
2025112722001400001\t,p1\t,退款\t,四人火锅\t,2025-11-27 01:00:00,2025-11-27 02:00:00,\t,\t,\t,\t,xud***@126.com\t,-19.90,-19.90,0.00,0.00,0.00,0.00,0.00,\t,0.00,0.00,not_drawn-m1\t,0.12,0.00,\t\n\
#-----------------------------------------业务明细列表结束------------------------------------\n\
#交易合计：1笔，商家实收：19.90元，商家优惠：0.00元\n#退款合计：1笔，商家实收：-19.90元，商家优惠：0.00元\n\
#导出时间：[2025年11月28日 09:12:34]\n";

    /// The fixture `tests/fixtures/alipay/trade_bill_20251127.zip` (made by `make_trade_bill_zip.py` beside it):
    /// Alipay's shape — a zip of GBK files named in GBK, the detail with its `#` header and summary footer.
    #[test]
    fn the_zipped_gbk_bill_reads_as_alipay_serves_it() {
        let zipped = include_bytes!("../../../tests/fixtures/alipay/trade_bill_20251127.zip");
        let text = read_bill_file(zipped).unwrap();
        assert!(text.starts_with("#支付宝业务明细查询"), "the detail, not the 汇总: {text}");
        let lines = parse_bill(&text).unwrap();
        assert_eq!(lines.len(), 3, "two trades and a refund");
        assert_eq!(
            lines[1],
            BillLine::Payment {
                at: parse_beijing("2025-11-27 10:01:30").unwrap(),
                out_trade_no: "0c1d6e2a-7b3f-4a8e-9d21-5f6a7b8c9d02".into(),
                provider_trade_id: "2025112722001400000002".into(),
                amount: Fen::from_stored(1_990).unwrap(),
            }
        );
        assert_eq!(
            lines[2],
            BillLine::Refund {
                at: parse_beijing("2025-11-27 12:30:00").unwrap(),
                out_trade_no: "0c1d6e2a-7b3f-4a8e-9d21-5f6a7b8c9d01".into(),
                out_refund_no: "not_drawn-7a1b2c3d-0000-4000-8000-000000000001".into(),
                provider_refund_id: "2025112722001400000001/not_drawn-7a1b2c3d-0000-4000-8000-000000000001".into(),
                amount: Fen::from_stored(990).unwrap(),
            }
        );
        // The footer is checked: a bill whose rows do not add up to it is refused.
        let tampered = text.replace("#交易合计：2笔，商家实收：29.80元", "#交易合计：2笔，商家实收：29.81元");
        assert!(parse_bill(&tampered).is_err());
        // A plain GBK CSV reads the same; a truncated zip or one without the detail is an error, not a bill.
        let (gbk, _, _) = GBK.encode(&text);
        assert_eq!(read_bill_file(&gbk).unwrap(), text);
        assert!(read_bill_file(&zipped[..zipped.len() / 2]).is_err());
        assert!(read_bill_file(b"PK\x03\x04 not a zip").is_err());
    }

    #[test]
    fn the_trade_bill_reads_into_lines_and_its_summary_is_checked() {
        let lines = parse_bill(SAMPLE).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            BillLine::Payment {
                at: parse_beijing("2025-11-27 01:00:05").unwrap(),
                out_trade_no: "p1".into(),
                provider_trade_id: "2025112722001400001".into(),
                amount: Fen::from_stored(1_990).unwrap(),
            }
        );
        assert!(matches!(&lines[1], BillLine::Refund { out_refund_no, amount, .. }
            if out_refund_no == "not_drawn-m1" && amount.get() == 1_990));
        assert!(parse_bill(&SAMPLE.replace("#交易合计：1笔", "#交易合计：2笔")).is_err());
        assert!(parse_bill(&SAMPLE.replace("商家实收：19.90元", "商家实收：19.91元")).is_err());
        assert!(parse_bill(&SAMPLE.replace(",交易\t,", ",转账\t,")).is_err());
        assert!(parse_bill("#只有注释\n").is_err());
    }
}

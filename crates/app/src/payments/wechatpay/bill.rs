//! The trade bill (交易账单, `bill_type=ALL`): a CSV whose fields start with a backtick (so spreadsheets keep
//! long numbers as text), amounts in yuan, times in China Standard Time, and a summary footer
//! (`总交易单数,应结订单总金额,退款总金额,…`) that must add up to the lines. Columns are found by their names, so
//! the direct-merchant and the partner (特约商户号) bills read alike.

use crate::payments::port::BillLine;
use tuangou_domain::money::Fen;
use tuangou_domain::time::{Millis, parse_rfc3339};

const FOOTER_FIRST: &str = "总交易单数";

fn cells(line: &str) -> Vec<&str> {
    line.trim_end_matches('\r').split(',').map(|cell| cell.strip_prefix('`').unwrap_or(cell)).collect()
}

fn column(header: &[&str], name: &str) -> Result<usize, String> {
    header.iter().position(|h| h.trim_start_matches('\u{feff}') == name).ok_or_else(|| format!("no column {name:?}"))
}

fn yuan(text: &str) -> Result<Fen, String> {
    Fen::parse_yuan(text.trim()).ok_or_else(|| format!("not an amount in yuan: {text:?}"))
}

/// `YYYY-MM-DD HH:MM:SS` in China Standard Time.
fn time(text: &str) -> Result<Millis, String> {
    parse_rfc3339(&format!("{}+08:00", text.trim().replacen(' ', "T", 1)))
        .ok_or_else(|| format!("not a time: {text:?}"))
}

/// Reads a trade bill into our lines: a `SUCCESS` line is a payment of its 订单金额, a `REFUND` line a refund of
/// its 申请退款金额 (what we asked for); other states (REVOKED, …) move no money and are skipped. The footer's
/// count and totals (订单总金额, 申请退款总金额, and 应结/退款 totals) must match the lines.
pub fn parse_trade_bill(raw: &str) -> Result<Vec<BillLine>, String> {
    let mut rows = raw.lines().filter(|l| !l.trim().is_empty());
    let header = cells(rows.next().ok_or("an empty bill")?);
    let c = |name| column(&header, name);
    let (at, trade_id, out_trade_no, state) = (c("交易时间")?, c("微信订单号")?, c("商户订单号")?, c("交易状态")?);
    let (settled, refund_id, out_refund_no, refunded) =
        (c("应结订单金额")?, c("微信退款单号")?, c("商户退款单号")?, c("退款金额")?);
    let (ordered, asked) = (c("订单金额")?, c("申请退款金额")?);
    let width = header.len();
    let mut lines = Vec::new();
    let (mut count, mut sums) = (0_usize, [Fen::ZERO; 4]);
    let add = |sum: &mut Fen, value: Fen| -> Result<(), String> {
        *sum = sum.checked_add(value).ok_or("a total overflows")?;
        Ok(())
    };
    let mut footer = None;
    for row in rows.by_ref() {
        let fields = cells(row);
        if fields.first() == Some(&FOOTER_FIRST) {
            footer = Some(fields.iter().map(|f| f.to_string()).collect::<Vec<_>>());
            break;
        }
        if fields.len() != width {
            return Err(format!("a bill line has {} fields, not {width}", fields.len()));
        }
        count += 1;
        for (sum, index) in sums.iter_mut().zip([settled, refunded, ordered, asked]) {
            add(sum, yuan(fields[index])?)?;
        }
        match fields[state] {
            "SUCCESS" => lines.push(BillLine::Payment {
                at: time(fields[at])?,
                out_trade_no: fields[out_trade_no].to_owned(),
                provider_trade_id: fields[trade_id].to_owned(),
                amount: yuan(fields[ordered])?,
            }),
            "REFUND" => lines.push(BillLine::Refund {
                at: time(fields[at])?,
                out_trade_no: fields[out_trade_no].to_owned(),
                out_refund_no: fields[out_refund_no].to_owned(),
                provider_refund_id: fields[refund_id].to_owned(),
                amount: yuan(fields[asked])?,
            }),
            _ => {}
        }
    }
    let names = footer.ok_or("the bill has no summary")?;
    let values = cells(rows.next().ok_or("the bill's summary has no values")?);
    let value = |name: &str| -> Result<&str, String> {
        let index = names.iter().position(|n| n == name).ok_or_else(|| format!("no summary column {name:?}"))?;
        values.get(index).copied().ok_or_else(|| format!("no summary value for {name:?}"))
    };
    // The count is written as a decimal (`45.0`).
    let stated_count = value("总交易单数")?;
    let stated_count = stated_count.strip_suffix(".0").unwrap_or(stated_count).parse::<usize>().ok();
    if stated_count != Some(count) {
        return Err(format!("the summary counts {stated_count:?} lines, the bill has {count}"));
    }
    for (name, sum) in ["应结订单总金额", "退款总金额", "订单总金额", "申请退款总金额"].into_iter().zip(sums)
    {
        let stated = value(name)?;
        let stated = Fen::parse_yuan(stated);
        if stated != Some(sum) {
            return Err(format!("the summary's {name} is {stated:?}, the lines add up to {}", sum.yuan_text()));
        }
    }
    Ok(lines)
}

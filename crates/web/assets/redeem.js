// The counter's redeem screen: scan with the camera or a photo (scan.js: BarcodeDetector, else jsQR), or type a
// code; preview (the deal, its price, this store), one tap to redeem, an unmistakable result, and undo (owner,
// within the hour). A voucher of another store the reader works at, scanned or typed, opens that store's counter.
(function () {
  'use strict';
  const root = document.querySelector('[data-redeem]');
  if (!root) return;
  const $ = (sel) => root.querySelector(sel);
  const merchant = root.dataset.redeem;
  const text = root.dataset;
  const lang = document.documentElement.lang === 'en' ? 'en' : 'zh';
  const say = (zh, en) => (lang === 'en' ? en : zh);
  const result = $('[data-result]');
  const resultText = $('[data-result-text]');
  const go = $('[data-redeem-go]');
  const undo = $('[data-undo]');
  const input = root.querySelector('#code');
  const store = root.dataset.store;
  const counters = (root.dataset.counters || '').split(' ').filter(Boolean);
  let current = null; // the previewed code
  let lastRedemption = null;

  const yuan = (fen) => '¥' + (fen / 100).toFixed(2);
  const kindName = (kind) => (kind === 'coupon' ? text.textCoupon : text.textPurchase);
  // A time as the pages show times: China Standard Time, `YYYY-MM-DD HH:MM` (the server's format::when).
  const cst = new Intl.DateTimeFormat('sv-SE', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
  });
  const when = (iso) => cst.format(new Date(iso));
  // What staff serve: the kind and price, and where (this store); the deal's title goes with the headline.
  const describe = (v) => `${kindName(v.kind)} ${yuan(v.amount)} · ${store}`;

  const resultDetail = $('[data-result-detail]');
  // The result in two lines: what happened (with the deal), then what to serve and where.
  function show(state, message, detail) {
    result.className = 'result ' + state;
    result.dataset.state = state;
    resultText.textContent = message;
    resultDetail.textContent = detail || '';
  }

  // Refusals in the reader's language, shared with every page (app.js).
  const explain = (p) => window.tuangouExplain(p);

  // The counter of another store the reader works at, with the code looked up as it opens.
  function moveTo(store, code) {
    location.href = `/shop/${encodeURIComponent(store)}/redeem?code=${encodeURIComponent(code)}`;
  }

  async function lookup(code) {
    current = null;
    go.hidden = true;
    undo.hidden = true;
    show('pending', say('查询中…', 'Checking…'));
    try {
      const v = await window.tuangouApi('GET', `/api/v1/merchants/${encodeURIComponent(merchant)}/vouchers/${encodeURIComponent(code)}`);
      // The API finds vouchers of every store the reader works at; each is redeemed at its own counter.
      if (v.merchant_id !== merchant) { moveTo(v.merchant_id, v.code); return; }
      if (v.status !== 'issued') {
        let refusal = explain({ code: { redeemed: 'already_redeemed', refunded: 'voucher_refunded' }[v.status] || v.status });
        if (v.redeemed_at) refusal += ` · ${text.textRedeemedAt} ${when(v.redeemed_at)}`;
        show('fail', refusal, `${v.campaign_title} · ${describe(v)}`);
        return;
      }
      current = code;
      show('pending', `${text.textReady}${v.campaign_title}`, `${describe(v)} · ${v.code}`);
      go.hidden = false;
      go.focus();
    } catch (p) {
      if (p.status === 401) { location.href = '/signin?next=' + encodeURIComponent(location.pathname); return; }
      show('fail', explain(p));
    }
  }

  root.querySelector('form[data-lookup]').addEventListener('submit', (event) => {
    event.preventDefault();
    const code = input.value.trim();
    if (code) lookup(code);
  });

  go.addEventListener('click', async () => {
    if (!current) return;
    go.disabled = true;
    try {
      const r = await window.tuangouApi('POST', `/api/v1/merchants/${encodeURIComponent(merchant)}/redemptions`, { code: current });
      lastRedemption = r.id;
      show('ok', `${text.textOk} ${r.voucher.campaign_title}`, `${describe(r.voucher)} · ${when(r.redeemed_at)}`);
      go.hidden = true;
      undo.hidden = false;
      input.value = '';
      current = null;
      const li = document.createElement('li');
      li.className = 'row';
      li.textContent = `${r.voucher.campaign_title} · ${kindName(r.voucher.kind)} ${yuan(r.voucher.amount)} · ${when(r.redeemed_at)}`;
      const list = document.querySelector('[data-recent]');
      if (list) list.prepend(li);
      const none = document.querySelector('[data-recent-empty]');
      if (none) none.remove();
    } catch (p) {
      show('fail', explain(p));
    } finally {
      go.disabled = false;
    }
  });

  undo.addEventListener('click', async () => {
    if (!lastRedemption) return;
    undo.disabled = true;
    try {
      await window.tuangouApi('DELETE', `/api/v1/merchants/${encodeURIComponent(merchant)}/redemptions/${encodeURIComponent(lastRedemption)}`);
      show('pending', text.textUndone);
      undo.hidden = true;
      lastRedemption = null;
    } catch (p) {
      show('fail', explain(p));
    } finally {
      undo.disabled = false;
    }
  });

  // A scanned text: a voucher address of another store the reader works at opens that counter; anything else is
  // looked up here (a store the reader does not work at gets the same refusal as a typed code).
  function scanned(textRead) {
    const found = window.tuangouScan.voucher(textRead);
    if (found.merchant && found.merchant !== merchant && counters.includes(found.merchant)) {
      moveTo(found.merchant, found.code);
      return;
    }
    input.value = found.code;
    lookup(found.code);
  }

  const scan = window.tuangouScan;
  const start = $('[data-scan-start]');
  const scanner = $('[data-scanner]');
  const video = $('[data-video]');
  const photo = $('[data-scan-photo]');
  let stopCamera = null;
  function cameraOff() {
    if (stopCamera) stopCamera();
    stopCamera = null;
    scanner.hidden = true;
    start.hidden = false;
  }
  if (scan && scan.canUseCamera) {
    start.hidden = false;
    start.addEventListener('click', async () => {
      try {
        stopCamera = await scan.camera(video, (found) => { cameraOff(); scanned(found); });
      } catch (e) {
        show('fail', text.textCameraOff);
        return;
      }
      scanner.hidden = false;
      start.hidden = true;
    });
    $('[data-scan-stop]').addEventListener('click', cameraOff);
  }
  // A photo of the code: for phones whose browser blocks the camera API, and for a code on another screen.
  if (scan) {
    photo.hidden = false;
    const file = $('[data-scan-file]');
    file.addEventListener('change', async () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      show('pending', say('识别中…', 'Reading…'));
      const found = await scan.fromFile(chosen);
      file.value = '';
      if (found) scanned(found);
      else show('fail', text.textNoQr);
    });
  }
  if (root.dataset.code) {
    input.value = root.dataset.code;
    lookup(root.dataset.code);
  } else {
    input.focus();
  }
})();

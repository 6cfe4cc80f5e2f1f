// The counter's redeem screen: camera scan where the browser offers BarcodeDetector, a typed code otherwise;
// preview, one tap to redeem, an unmistakable result, and undo (owner, within the hour).
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
  let current = null; // the previewed code
  let lastRedemption = null;

  const yuan = (fen) => '¥' + (fen / 100).toFixed(2);
  const kindName = (kind) => (kind === 'coupon' ? text.textCoupon : text.textPurchase);

  function show(state, message) {
    result.className = 'result ' + state;
    result.dataset.state = state;
    resultText.textContent = message;
  }

  // Refusals in the reader's language, shared with every page (app.js).
  const explain = (p) => window.tuangouExplain(p);

  async function lookup(code) {
    current = null;
    go.hidden = true;
    undo.hidden = true;
    show('pending', say('查询中…', 'Checking…'));
    try {
      const v = await window.tuangouApi('GET', `/api/v1/merchants/${encodeURIComponent(merchant)}/vouchers/${encodeURIComponent(code)}`);
      if (v.status !== 'issued') {
        show('fail', explain({ code: { redeemed: 'already_redeemed', refunded: 'voucher_refunded' }[v.status] || v.status }));
        return;
      }
      current = code;
      show('pending', `${text.textReady} ${kindName(v.kind)} ${yuan(v.amount)} · ${v.code}`);
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
      show('ok', `${text.textOk} ${kindName(r.voucher.kind)} ${yuan(r.voucher.amount)}`);
      go.hidden = true;
      undo.hidden = false;
      input.value = '';
      current = null;
      const li = document.createElement('li');
      li.className = 'row';
      li.textContent = `${kindName(r.voucher.kind)} ${yuan(r.voucher.amount)} · ${new Date().toLocaleTimeString(lang === 'en' ? 'en' : 'zh-CN')}`;
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

  // Camera scanning, only where the browser can read QR codes itself (no library is downloaded).
  const start = $('[data-scan-start]');
  const scanner = $('[data-scanner]');
  const video = $('[data-video]');
  let stream = null;
  function stopCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    scanner.hidden = true;
    start.hidden = false;
  }
  if ('BarcodeDetector' in window && navigator.mediaDevices) {
    start.hidden = false;
    const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
    start.addEventListener('click', async () => {
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      } catch (e) {
        show('fail', text.textCameraOff);
        return;
      }
      video.srcObject = stream;
      await video.play();
      scanner.hidden = false;
      start.hidden = true;
      const scan = async () => {
        if (!stream) return;
        try {
          const codes = await detector.detect(video);
          if (codes.length) {
            input.value = codes[0].rawValue;
            stopCamera();
            lookup(codes[0].rawValue);
            return;
          }
        } catch (e) { /* a frame that could not be read */ }
        setTimeout(scan, 250);
      };
      scan();
    });
    $('[data-scan-stop]').addEventListener('click', stopCamera);
  }
  input.focus();
})();

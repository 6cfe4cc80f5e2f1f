// QR codes read in the page, on any phone (issue 18): the browser's own BarcodeDetector where it has one, else
// jsQR (vendored from the npm registry: assets/vendor/jsQR.js) on frames of the camera drawn to a canvas. A photo
// of the code is read the same way: the way in for phones whose browser blocks the camera API (a file input with
// `capture` opens the camera app instead). Nothing is fetched; the counter page alone loads this.
(function () {
  'use strict';
  // The longest side a frame or photo is scaled to before decoding: a phone photo is 4000 px; a code fills a
  // good part of it, and jsQR's time grows with the pixels.
  const MAX_SIDE = 1024;
  let detector = null;
  try {
    if ('BarcodeDetector' in window) detector = new window.BarcodeDetector({ formats: ['qr_code'] });
  } catch (e) { detector = null; }

  const scan = {
    // Which decoder read the last code: 'BarcodeDetector' or 'jsQR'.
    decoder: null,
    canUseCamera: !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia),
  };

  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });

  // Draws a source (video or image) scaled down to MAX_SIDE and reads a QR code from it with jsQR.
  function withJsQR(source, width, height) {
    if (!window.jsQR || !width || !height) return null;
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(source, 0, 0, canvas.width, canvas.height);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    const found = window.jsQR(pixels.data, pixels.width, pixels.height, { inversionAttempts: 'attemptBoth' });
    return found && found.data ? found.data : null;
  }

  async function read(source, width, height) {
    if (detector) {
      try {
        const codes = await detector.detect(source);
        if (codes.length) { scan.decoder = 'BarcodeDetector'; return codes[0].rawValue; }
        return null;
      } catch (e) { /* this source it cannot read: jsQR may */ }
    }
    const text = withJsQR(source, width, height);
    if (text) scan.decoder = 'jsQR';
    return text;
  }

  // The text of the QR code in an image file (a photo, a screenshot), or null. createImageBitmap decodes the file
  // itself: an <img> of a blob: address would be refused by the pages' policy (img-src 'self').
  scan.fromFile = async function (file) {
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (e) {
      return null; // not an image this browser can read
    }
    try {
      return await read(bitmap, bitmap.width, bitmap.height);
    } finally {
      if (bitmap.close) bitmap.close();
    }
  };

  // Opens the back camera into `video` and calls `found(text)` once with the first code it sees. Resolves to a
  // function that stops the camera; rejects when the camera cannot be opened.
  scan.camera = async function (video, found) {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    let running = true;
    const stop = () => { running = false; stream.getTracks().forEach((t) => t.stop()); video.srcObject = null; };
    video.srcObject = stream;
    await video.play();
    const frame = async () => {
      if (!running) return;
      let text = null;
      if (video.readyState >= 2) text = await read(video, video.videoWidth, video.videoHeight);
      if (text && running) { stop(); found(text); return; }
      setTimeout(frame, 200);
    };
    frame();
    return stop;
  };

  // What a scanned text names: a voucher's address (`…/r/{merchant}/{code}`) or a bare code as typed.
  scan.voucher = function (text) {
    const value = String(text || '').trim();
    try {
      const url = new URL(value);
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (parts.length === 3 && parts[0] === 'r') return { merchant: parts[1], code: parts[2] };
      const code = url.searchParams.get('code');
      if (code) return { merchant: null, code };
    } catch (e) { /* not an address: a code */ }
    return { merchant: null, code: value };
  };

  window.tuangouScan = scan;
})();

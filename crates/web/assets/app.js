// tuangou pages: the little script every page loads. Pages are server-rendered and read fine without it; this
// adds the actions (each a call to the JSON API, signed in by the session cookie and the CSRF header), live
// updates over server-sent events, countdowns, location, and the in-browser draw verification.
(function () {
  'use strict';
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const lang = document.documentElement.lang === 'en' ? 'en' : 'zh';
  const say = (zh, en) => (lang === 'en' ? en : zh);

  function cookie(name) {
    const hit = document.cookie.split(';').map((c) => c.trim()).find((c) => c.startsWith(name + '='));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : '';
  }

  // One call to the API. Resolves to the parsed answer; rejects with the problem (status, code, detail, field).
  async function api(method, url, body, extraHeaders) {
    const headers = Object.assign({ 'x-csrf-token': cookie('tuangou_csrf'), 'accept': 'application/json' }, extraHeaders || {});
    if (body !== undefined) headers['content-type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
    let response;
    try {
      response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
    } catch (e) {
      throw { status: 0, code: 'offline', local: true, detail: say('网络不通，请稍后再试', 'No connection — try again') };
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) throw Object.assign({ status: response.status, detail: text }, data || {});
    return data;
  }
  window.tuangouApi = api;

  // Leaving to sign in (or up) remembers where on the page the reader was; coming back there scrolls to it.
  const RETURN_KEY = 'tuangou-return';
  function rememberPlace() {
    try { sessionStorage.setItem(RETURN_KEY, JSON.stringify({ path: location.pathname + location.search, y: window.scrollY })); } catch (e) { /* private mode */ }
  }
  function signInFirst() {
    rememberPlace();
    location.href = '/signin?next=' + encodeURIComponent(location.pathname + location.search);
  }
  $$('a[href^="/signin?"], a[href^="/signup?"]').forEach((link) => link.addEventListener('click', rememberPlace));
  (function comeBack() {
    let place = null;
    try { place = JSON.parse(sessionStorage.getItem(RETURN_KEY) || 'null'); } catch (e) { place = null; }
    if (!place || place.path !== location.pathname + location.search || location.pathname.startsWith('/sign')) return;
    try { sessionStorage.removeItem(RETURN_KEY); } catch (e) { /* ignore */ }
    window.scrollTo(0, place.y || 0);
  })();

  // Explains a refusal in the reader's language: the words for its field (when one is named) or its code, from the
  // catalogue the page loads (`/assets/problems.{lang}.js`, made from the Fluent catalogues); a code the catalogue
  // lacks (a test keeps every code the API answers in it) gets a general sentence, never the API's English.
  function explain(problem) {
    if (problem.local) return problem.detail; // made by this page, in the reader's language (no connection)
    const words = window.tuangouProblems || { codes: {}, fields: {} };
    if (problem.field && (problem.code === 'invalid_field' || !words.codes[problem.code]) && words.fields[problem.field]) {
      return words.fields[problem.field];
    }
    return words.codes[problem.code] || words.fallback || say('出错了，请稍后再试', 'Something went wrong — try again');
  }
  window.tuangouExplain = explain;

  function showProblem(container, problem) {
    $$('.field-error', container).forEach((e) => { e.textContent = ''; });
    $$('.field.invalid', container).forEach((e) => e.classList.remove('invalid'));
    $$('[aria-invalid]', container).forEach((e) => e.removeAttribute('aria-invalid'));
    const general = $('[data-error]', container) || $('[data-error]');
    if (problem.field) {
      const slot = $(`[data-field-error="${CSS.escape(problem.field)}"]`, container);
      if (slot) {
        slot.textContent = explain(problem);
        const field = slot.closest('.field');
        if (field) {
          field.classList.add('invalid');
          const input = $('input, select, textarea', field);
          if (input) { input.setAttribute('aria-invalid', 'true'); input.focus(); }
        }
        if (general) general.textContent = '';
        return;
      }
    }
    if (general) general.textContent = explain(problem);
  }

  // Form fields → the API's JSON: `a.b` names nest, data-type converts (yuan → fen, hours → seconds, …).
  function formBody(form) {
    const body = {};
    const kind = (form.querySelector('[name="reward.kind"]') || {}).value;
    for (const el of form.elements) {
      if (!el.name || el.disabled || (el.type === 'radio' && !el.checked)) continue;
      if (el.closest('[data-show-when]') && el.closest('[data-show-when]').hidden) continue;
      let value = el.value.trim();
      if (value === '' && el.hasAttribute('data-optional')) continue;
      const type = el.dataset.type;
      const toFen = (v) => (/^\d+(\.\d{1,2})?$/.test(v) ? Math.round(parseFloat(v) * 100) : v);
      if (type === 'yuan') value = toFen(value);
      else if (type === 'reward') value = kind === 'points' ? (/^\d+$/.test(value) ? parseInt(value, 10) : value) : toFen(value);
      else if (type === 'int') value = /^-?\d+$/.test(value) ? parseInt(value, 10) : value;
      else if (type === 'number') value = value !== '' && !isNaN(Number(value)) ? Number(value) : value;
      else if (type === 'hours') value = value !== '' && !isNaN(Number(value)) ? Math.round(Number(value) * 3600) : value;
      else if (type === 'percent') value = value !== '' && !isNaN(Number(value)) ? Math.round(Number(value) * 100) : value;
      else if (type === 'china-time') value = value.length === 16 ? value + ':00+08:00' : value;
      const path = el.name.split('.');
      let target = body;
      while (path.length > 1) { const k = path.shift(); target = target[k] = target[k] || {}; }
      target[path[0]] = value;
    }
    return body;
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // <form data-api="METHOD /url" data-next="/path/{id}">
  $$('form[data-api]').forEach((form) => {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const [method, url] = form.dataset.api.split(' ');
      const button = form.querySelector('[type=submit]');
      busy(button, true);
      try {
        const headers = form.hasAttribute('data-idempotent') ? { 'idempotency-key': crypto.randomUUID() } : {};
        const answer = await api(method, url, formBody(form), headers);
        if (window.tuangouAfterSave) await window.tuangouAfterSave(form, answer); // photos.js: the chosen photo
        const next = (form.dataset.next || location.pathname).replace('{id}', answer && answer.id ? answer.id : '');
        location.href = next;
      } catch (problem) {
        if (problem.status === 401) return signInFirst();
        showProblem(form, problem);
        busy(button, false);
      }
    });
  });

  // Show or hide the fields that only apply to one choice (data-show-when="name=value"), or to every choice but
  // one (data-show-when="name!=value").
  function applyShowWhen(form) {
    $$('[data-show-when]', form).forEach((el) => {
      const negated = el.dataset.showWhen.includes('!=');
      const [name, value] = el.dataset.showWhen.split(negated ? '!=' : '=');
      const chosen = form.querySelector(`[name="${name}"]:checked`) || form.querySelector(`select[name="${name}"]`);
      el.hidden = !chosen || (negated ? chosen.value === value : chosen.value !== value);
    });
  }

  // The campaign editor's live preview of the rules card, with field-level errors — only on fields the writer has
  // touched (the preview of a half-filled form would otherwise greet them with an error before they typed).
  const editor = $('form[data-preview]');
  if (editor) {
    let timer = null;
    const touched = new Set();
    const target = $('[data-preview-target]', editor);
    const refresh = async () => {
      applyShowWhen(editor);
      const response = await fetch(editor.dataset.preview, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(formBody(editor)), credentials: 'same-origin',
      });
      const text = await response.text();
      if (response.ok) {
        target.innerHTML = text;
        showProblem(editor, {});
        $('[data-error]', editor).textContent = '';
      } else {
        let problem = {};
        try { problem = JSON.parse(text); } catch (e) { problem = { detail: text }; }
        showProblem(editor, problem.field && !touched.has(problem.field) ? {} : problem);
        if (touched.size === 0) $('[data-error]', editor).textContent = '';
      }
      // How many previews have answered (tests wait on it rather than on time).
      editor.dataset.checked = String(Number(editor.dataset.checked || 0) + 1);
    };
    const later = (event, ms) => {
      if (event.target && event.target.name) touched.add(event.target.name);
      clearTimeout(timer);
      timer = setTimeout(refresh, ms);
    };
    editor.addEventListener('input', (event) => later(event, 250));
    editor.addEventListener('change', (event) => later(event, 50));
    // Submitting shows every error, touched or not.
    editor.addEventListener('submit', () => $$('[name]', editor).forEach((el) => touched.add(el.name)), true);
    applyShowWhen(editor);
    refresh();
  }

  // Where to go after signing in: the server sends a path on this site; read as the browser reads it, anything
  // that would leave the site (another origin, or a path starting with `//`) goes home instead.
  function sameSitePath(next) {
    let target;
    try { target = new URL(next || '/', location.origin); } catch (e) { return '/'; }
    if (target.origin !== location.origin || target.pathname.startsWith('//')) return '/';
    return target.pathname + target.search;
  }

  // Sign in / sign up.
  $$('form[data-account]').forEach((form) => {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const button = form.querySelector('[type=submit]');
      busy(button, true);
      const body = formBody(form);
      try {
        if (form.dataset.account === 'signup') await api('POST', '/api/v1/users', body);
        await api('POST', '/api/v1/sessions', { phone: body.phone, password: body.password });
      } catch (problem) {
        showProblem(form, problem);
        busy(button, false);
        return;
      }
      // Signed in: complete the join the reader started (pages::join), else go back.
      let next = sameSitePath(form.dataset.next);
      if (form.dataset.joinApi) {
        try {
          // Our API's answer: the group, or the provider's pay page (which may be the provider's own site).
          next = await joinAndPay(form.dataset.joinApi, form.dataset.invitedBy, form.dataset.payWith);
        } catch (problem) {
          flashOnNextPage(explain(problem));
        }
      }
      location.href = next;
    });
  });

  $$('[data-sign-out]').forEach((link) => link.addEventListener('click', async (event) => {
    event.preventDefault();
    try { await api('DELETE', '/api/v1/sessions/current'); } catch (e) { /* signed out already */ }
    location.href = '/';
  }));

  // Joining (pay into a group): one Idempotency-Key per tap, so a double tap charges once. The wallet pays when
  // it covers the price; else (402) the provider the page names does: a pending seat, and its pay page. Resolves
  // to where to go next (the provider's pay page, or the group).
  async function joinAndPay(url, invitedBy, payWith) {
    const join = (provider) => {
      const body = {};
      if (invitedBy) body.invited_by = invitedBy;
      if (provider) body.pay_with = provider;
      return api('POST', url, body, { 'idempotency-key': crypto.randomUUID() });
    };
    let answer;
    try {
      answer = await join();
    } catch (problem) {
      if (problem.status !== 402 || !payWith) throw problem;
      answer = await join(payWith);
    }
    const client = answer.payment && answer.payment.client;
    return client && client.url ? client.url : '/g/' + answer.group.id;
  }
  $$('button[data-join]').forEach((button) => button.addEventListener('click', async () => {
    busy(button, true);
    try {
      location.href = await joinAndPay(button.dataset.join, button.dataset.invitedBy, button.dataset.payWith);
    } catch (problem) {
      if (problem.status === 401) return signInFirst();
      showProblem(button.closest('section') || document, problem);
      busy(button, false);
    }
  }));

  // A message carried to the next page (a join that could not be completed after signing up): shown where that
  // page shows its errors.
  const FLASH_KEY = 'tuangou-flash';
  function flashOnNextPage(text) {
    try { sessionStorage.setItem(FLASH_KEY, text); } catch (e) { /* private mode: the page shows its state */ }
  }
  (function showFlash() {
    let text = null;
    try { text = sessionStorage.getItem(FLASH_KEY); sessionStorage.removeItem(FLASH_KEY); } catch (e) { text = null; }
    const slot = $('[data-join-bar] [data-error]') || $('[data-error]');
    if (text && slot) slot.textContent = text;
  })();

  // Paying a pending seat on the group page with WeChat Pay: JSAPI inside WeChat (its bridge), or a Native QR code
  // scanned with WeChat. Either way the page then looks at the payment until it no longer waits, and reloads.
  function reloadOncePaid(id, tries) {
    setTimeout(async () => {
      try {
        const payment = await api('GET', '/api/v1/me/payments/' + encodeURIComponent(id));
        if (payment.status !== 'created') { location.reload(); return; }
      } catch (e) { /* looked at again */ }
      if (tries > 1) reloadOncePaid(id, tries - 1);
    }, 3000);
  }
  $$('[data-pay-qr]').forEach((qr) => reloadOncePaid(qr.dataset.payment, 100));
  $$('[data-pay-jsapi]').forEach((button) => button.addEventListener('click', () => {
    const params = JSON.parse(button.dataset.payJsapi);
    const pay = () => window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, () => reloadOncePaid(button.dataset.payment, 20));
    if (window.WeixinJSBridge) pay();
    else if (/MicroMessenger/.test(navigator.userAgent)) document.addEventListener('WeixinJSBridgeReady', pay, { once: true });
    else showProblem(button.closest('section') || document, { detail: say('请在微信中打开本页完成支付', 'Open this page in WeChat to pay') });
  }));

  // Buttons that do one thing and reload: publish, end, approve, refund, close the account.
  function confirmed(el) { return !el.dataset.confirm || window.confirm(el.dataset.confirm); }
  $$('[data-action], [data-refund], [data-close-account]').forEach((button) => button.addEventListener('click', async () => {
    if (!confirmed(button)) return;
    busy(button, true);
    let method = 'POST', url = button.dataset.refund;
    if (button.dataset.action) [method, url] = button.dataset.action.split(' ');
    if (button.hasAttribute('data-close-account')) { method = 'DELETE'; url = '/api/v1/me'; }
    try {
      await api(method, url);
      location.href = button.hasAttribute('data-close-account') ? '/' : location.pathname;
    } catch (problem) {
      if (problem.status === 401) return signInFirst();
      showProblem(button.closest('section') || document, problem);
      busy(button, false);
    }
  }));

  // The sandbox's page, once paid, sends the payer back where they came from, as real providers do with their
  // return_url; replacing itself, so Back does not land on it again. The link stays for when this does not run.
  const autoReturn = $('[data-sandbox-return][data-auto-return]');
  if (autoReturn) setTimeout(() => location.replace(autoReturn.href), 1200);

  $$('[data-copy]').forEach((button) => button.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(button.dataset.copy); button.textContent = say('已复制', 'Copied'); } catch (e) { /* shown anyway */ }
  }));
  $$('[data-print]').forEach((button) => button.addEventListener('click', () => window.print()));

  // Device location: the home page lists deals nearest first; onboarding fills the coordinates.
  function locate(then) {
    const status = $('[data-locate-status]');
    if (!navigator.geolocation) { if (status) status.textContent = say('此浏览器不能定位', 'This browser cannot locate you'); return; }
    if (status) status.textContent = say('正在定位…', 'Locating…');
    navigator.geolocation.getCurrentPosition(
      (p) => { if (status) status.textContent = ''; then(p.coords.latitude.toFixed(5), p.coords.longitude.toFixed(5)); },
      () => { if (status) status.textContent = say('未获得位置：请选择城市', 'No location: pick a city'); },
      { timeout: 10000, maximumAge: 600000 });
  }
  $$('[data-locate]').forEach((b) => b.addEventListener('click', () => locate((lat, lng) => { location.href = `/?lat=${lat}&lng=${lng}`; })));
  $$('[data-fill-location]').forEach((b) => b.addEventListener('click', () => locate((lat, lng) => {
    $('#latitude').value = lat; $('#longitude').value = lng;
  })));

  // Countdowns: data-deadline in Unix milliseconds.
  function tick() {
    const now = Date.now();
    $$('[data-deadline]').forEach((el) => {
      const left = Math.max(0, Math.floor((Number(el.dataset.deadline) - now) / 1000));
      const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      const pad = (n) => String(n).padStart(2, '0');
      el.textContent = (h > 0 ? h + ':' : '') + pad(m) + ':' + pad(s);
      el.setAttribute('aria-label', say('剩余时间 ', 'Time left ') + el.textContent);
    });
  }
  tick();
  setInterval(tick, 1000);

  // Live updates: on any event of this page's stream, fetch the page again and swap its live regions.
  const stream = document.body.dataset.events;
  if (stream && window.EventSource) {
    let pending = null;
    const refresh = async () => {
      const response = await fetch(location.href, { credentials: 'same-origin' });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
      let statusChanged = false;
      $$('[data-live]').forEach((region) => {
        const next = fresh.querySelector(`[data-live="${region.dataset.live}"]`);
        if (!next) return;
        if (region.dataset.status !== next.dataset.status) statusChanged = true;
        region.replaceWith(next);
      });
      // A group that changed state (filled, drawn, expired) changes more than its live region: show it whole.
      if (statusChanged) location.reload();
      tick();
      wireVerify();
    };
    const source = new EventSource(stream);
    const schedule = () => { clearTimeout(pending); pending = setTimeout(refresh, 150); };
    ['joined', 'full', 'drawn', 'expired', 'redeemed', 'undone', 'resync'].forEach((name) => source.addEventListener(name, schedule));
    source.onmessage = schedule;
  }

  // "Verify this draw", computed here from the public record with Web Crypto (verify.js).
  const checkNames = {
    algorithm: say('算法是 tuangou-draw-v1', 'The algorithm is tuangou-draw-v1'),
    commitment: say('公开的种子与开团时的承诺一致', 'The revealed seed matches the commitment made when the group opened'),
    members: say('成员名单完整（1…N）', 'The member list is complete (1…N)'),
    digest: say('成员摘要与名单一致', 'The participants digest matches the list'),
    winners: say('中奖者由种子与名单重新算出，一致', 'The winners recompute from the seed and the list'),
    not_drawn: say('尚未开奖', 'Not drawn yet'),
  };
  function showChecks(box, result) {
    const list = $('[data-verify-checks]', box);
    list.innerHTML = '';
    result.checks.forEach((c) => {
      const li = document.createElement('li');
      li.className = c.ok ? 'ok' : 'fail';
      li.dataset.check = c.id;
      li.textContent = (checkNames[c.id] || c.id) + (c.ok ? '' : ' — ' + (c.detail || ''));
      list.appendChild(li);
    });
    const summary = $('[data-verify-summary]', box);
    summary.textContent = result.ok ? say('✓ 验证通过：本次开奖公平可查', '✓ Verified: this draw is fair and checkable')
      : say('✗ 验证失败', '✗ Verification failed');
    summary.dataset.verified = result.ok ? 'yes' : 'no';
  }
  async function runVerify(box) {
    if (!window.tuangouDraw) return;
    let record;
    if (box.hasAttribute('data-verify-paste')) {
      try { record = JSON.parse($('textarea', box).value); } catch (e) { record = null; }
    } else {
      record = await (await fetch(box.dataset.verify, { credentials: 'same-origin' })).json();
    }
    showChecks(box, await window.tuangouDraw.verifyRecord(record));
  }
  function wireVerify() {
    $$('[data-verify], [data-verify-paste]').forEach((box) => {
      const button = $('[data-verify-run]', box);
      if (button && !button.dataset.wired) {
        button.dataset.wired = '1';
        button.addEventListener('click', () => runVerify(box));
      }
      if (box.hasAttribute('data-verify-auto') && !box.dataset.ran) {
        box.dataset.ran = '1';
        // verify.js loads with defer after this script: wait for it.
        const start = () => (window.tuangouDraw ? runVerify(box) : setTimeout(start, 50));
        start();
      }
    });
  }
  wireVerify();
})();

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
      throw { status: 0, code: 'offline', detail: say('网络不通，请稍后再试', 'No connection — try again') };
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) throw Object.assign({ status: response.status, detail: text }, data || {});
    return data;
  }
  window.tuangouApi = api;

  function signInFirst() {
    location.href = '/signin?next=' + encodeURIComponent(location.pathname + location.search);
  }

  // Explains a refusal in the reader's language where we know the code, else shows the API's own detail.
  function explain(problem) {
    const known = {
      insufficient_funds: say('余额不足：请先充值', 'Not enough money in your wallet: top up first'),
      group_full: say('这个团刚刚满员了，换一个团试试', 'This group just filled up — try another'),
      sold_out: say('已售罄', 'Sold out'),
      already_member: say('你已经在这个团里了', 'You are already in this group'),
      limit_reached: say('已达到每人参与上限', 'You have reached the limit for this deal'),
      own_merchant: say('商家自己的人不能参团', "A store's own people cannot join its groups"),
      csrf_failed: say('页面已过期，请刷新', 'This page is stale — reload it'),
      throttled: say('尝试过多，请稍后再试', 'Too many attempts — wait a while and try again'),
      overloaded: say('服务繁忙，请稍后再试', 'The service is busy — try again in a moment'),
      bad_credentials: say('手机号或密码不对', 'Wrong phone or password'),
      // The counter's refusals (redeem.js).
      unknown_code: say('无效券码（不是本店的券，或输错了）', 'Not a voucher of this store (or mistyped)'),
      already_redeemed: say('这张券已经核销过了', 'This voucher was already redeemed'),
      expired: say('这张券已过期', 'This voucher has expired'),
      refunded: say('这张券已退款', 'This voucher was refunded'),
      staff_only: say('只有本店员工可以核销', "Only this store's staff can redeem"),
      owner_only: say('只有店主可以撤销核销', 'Only the owner can undo a redemption'),
      // Payouts and withdrawals.
      payout_in_progress: say('已有一笔结算在处理中，请等它完成', 'A payout is already on its way — wait until it finishes'),
      withdrawal_pending: say('有提现正在处理中，完成后才能注销', 'A withdrawal is on its way — close the account once it finishes'),
    };
    return known[problem.code] || problem.detail || say('出错了', 'Something went wrong');
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

  // The campaign editor's live preview of the rules card, with field-level errors.
  const editor = $('form[data-preview]');
  if (editor) {
    let timer = null;
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
        showProblem(editor, problem);
      }
    };
    editor.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
    editor.addEventListener('change', () => { clearTimeout(timer); timer = setTimeout(refresh, 50); });
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
        location.href = sameSitePath(form.dataset.next);
      } catch (problem) {
        showProblem(form, problem);
        busy(button, false);
      }
    });
  });

  $$('[data-sign-out]').forEach((link) => link.addEventListener('click', async (event) => {
    event.preventDefault();
    try { await api('DELETE', '/api/v1/sessions/current'); } catch (e) { /* signed out already */ }
    location.href = '/';
  }));

  // Joining (pay into a group): one Idempotency-Key per tap, so a double tap charges once. The wallet pays when
  // it covers the price; else (402) the provider the page names does: a pending seat, and its pay page.
  $$('[data-join]').forEach((button) => button.addEventListener('click', async () => {
    busy(button, true);
    const join = (payWith) => {
      const body = {};
      if (button.dataset.invitedBy) body.invited_by = button.dataset.invitedBy;
      if (payWith) body.pay_with = payWith;
      return api('POST', button.dataset.join, body, { 'idempotency-key': crypto.randomUUID() });
    };
    try {
      let answer;
      try {
        answer = await join();
      } catch (problem) {
        if (problem.status !== 402 || !button.dataset.payWith) throw problem;
        answer = await join(button.dataset.payWith);
      }
      const client = answer.payment && answer.payment.client;
      location.href = client && client.url ? client.url : '/g/' + answer.group.id;
    } catch (problem) {
      if (problem.status === 401) return signInFirst();
      showProblem(button.closest('section') || document, problem);
      busy(button, false);
    }
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
    ['joined', 'full', 'drawn', 'expired', 'resync'].forEach((name) => source.addEventListener(name, schedule));
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

// tuangou photos.js: the photo controls of the owner's pages (the store's photo, a deal's photo). The file goes
// to the API as the raw body of a PUT in its own type (image/jpeg, image/png, image/webp); the server re-encodes
// it. Refusals are shown in the reader's language from the messages the page carries (data-msg-*).
(function () {
  'use strict';
  const MAX_BYTES = 10 * 1024 * 1024;
  const TYPES = ['image/jpeg', 'image/png', 'image/webp'];

  function cookie(name) {
    const hit = document.cookie.split(';').map((c) => c.trim()).find((c) => c.startsWith(name + '='));
    return hit ? decodeURIComponent(hit.slice(name.length + 1)) : '';
  }

  // The refusal in words: by the API's code, else the page's general message.
  function message(input, problem) {
    const byCode = {
      photo_too_large: input.dataset.msgTooLarge,
      photo_too_many_pixels: input.dataset.msgTooManyPixels,
      invalid_photo: input.dataset.msgInvalid,
      unsupported_media_type: input.dataset.msgType,
    };
    return byCode[problem.code] || input.dataset.msgFailed;
  }

  // Sends the file; resolves to the API's answer (the store or the campaign, with its photo_url).
  async function upload(input, url, file) {
    if (!TYPES.includes(file.type)) throw { code: 'unsupported_media_type' };
    if (file.size > MAX_BYTES) throw { code: 'photo_too_large' };
    let response;
    try {
      response = await fetch(url, {
        method: 'PUT', body: file, credentials: 'same-origin',
        headers: { 'content-type': file.type, 'x-csrf-token': cookie('tuangou_csrf'), 'accept': 'application/json' },
      });
    } catch (e) {
      throw { code: 'offline' };
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) throw Object.assign({ status: response.status }, data || {});
    return data;
  }

  function field(input) { return input.closest('[data-photo-field]'); }

  function show(input, answer) {
    const box = field(input);
    const error = box.querySelector('[data-field-error="photo"]');
    const status = box.querySelector('[data-photo-status]');
    if (error) error.textContent = '';
    box.classList.remove('invalid');
    if (answer && answer.photo_url) {
      const img = document.createElement('img');
      img.src = answer.photo_url;
      img.alt = '';
      img.dataset.photoPreview = '';
      box.querySelector('[data-photo-preview]').replaceWith(img);
      if (status) status.textContent = input.dataset.msgSaved;
    }
  }

  function refuse(input, problem) {
    const box = field(input);
    const error = box.querySelector('[data-field-error="photo"]');
    if (error) error.textContent = message(input, problem);
    box.classList.add('invalid');
    const status = box.querySelector('[data-photo-status]');
    if (status) status.textContent = '';
  }

  // Right away: the store's photo, a saved deal's photo.
  document.querySelectorAll('input[data-photo][data-photo-mode="now"]').forEach((input) => {
    input.addEventListener('change', async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      input.disabled = true;
      try {
        show(input, await upload(input, input.dataset.photo, file));
      } catch (problem) {
        if (problem.status === 401) { location.href = '/signin?next=' + encodeURIComponent(location.pathname); return; }
        refuse(input, problem);
      } finally {
        input.disabled = false;
      }
    });
  });

  // A new draft's photo waits for the save: say which file was chosen (a local preview would need blob: images,
  // which the Content-Security-Policy does not allow).
  document.querySelectorAll('input[data-photo][data-photo-mode="after-save"]').forEach((input) => {
    input.addEventListener('change', () => {
      const file = input.files && input.files[0];
      const status = field(input).querySelector('[data-photo-status]');
      if (status) status.textContent = file ? input.dataset.msgChosen.replace('{name}', file.name) : '';
    });
  });

  // After the editor saved a new draft (app.js calls this with the API's answer): its photo, if one was chosen.
  // A refused photo leaves the draft saved: the form then edits that draft, so saving again makes no second one.
  window.tuangouAfterSave = async function (form, answer) {
    const input = form.querySelector('input[data-photo][data-photo-mode="after-save"]');
    const file = input && input.files && input.files[0];
    if (!file || !answer || !answer.id) return;
    const url = input.dataset.photo.replace('{id}', answer.id);
    try {
      await upload(input, url, file);
    } catch (problem) {
      form.dataset.api = 'PATCH /api/v1/campaigns/' + answer.id;
      form.dataset.next = '/shop/campaigns/' + answer.id;
      input.dataset.photo = url;
      throw { status: problem.status || 0, code: problem.code || 'photo_failed', field: 'photo', detail: message(input, problem) };
    }
  };
})();

// login.js -- the login form (POST /api/v1/session). A wrong password and an
// unknown user get the same answer from the server; 429 says when to retry.
import { login } from '../api.js';
import { append, field, h } from '../dom.js';

export function render(main, ctx) {
  const user = h('input', { name: 'user', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h('form', {
    class: 'login card',
    onsubmit: async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      try {
        await login(user.value, password.value);
        ctx.done();
      } catch (e) {
        error.textContent = e.status === 429 ? `Too many tries: ${e.message}` : `Login failed: ${e.message}`;
        error.hidden = false;
        password.select();
      }
    },
  },
  h('h1', {}, 'Log in'),
  field('User', user),
  field('Password', password),
  error,
  h('button', { type: 'submit' }, 'Log in'));
  append(main, form);
  user.focus();
}

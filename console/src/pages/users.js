// users.js -- operator accounts (admin only), as the `admin-server user`
// commands: add with a role and password, change a role, remove.
import { currentSession, del, get, patch, post, seg } from '../api.js';
import { append, field, h, select, table } from '../dom.js';
import { time } from '../format.js';

const roleOptions = [['viewer', 'viewer'], ['operator', 'operator'], ['admin', 'admin']];

export async function render(main, ctx) {
  const page = await get('/api/v1/users');
  if (ctx.stale()) return;
  const me = currentSession()?.user;
  const again = () => ctx.navigate('/users');
  append(main, h('h1', {}, 'Users'), table({ text: 'Accounts', hidden: true }, [
    { title: 'Name', cell: (u) => u.name },
    { title: 'Role', cell: (u) => roleForm(u, ctx, again) },
    { title: 'Created', cell: (u) => time(u.created_at) },
    {
      title: 'Remove',
      cell: (u) => (u.name === me ? h('span', { class: 'hint' }, 'you') : h('button', {
        type: 'button',
        class: 'danger',
        'aria-label': `Remove user ${u.name}`,
        onclick: async () => {
          if (!window.confirm(`Remove ${u.name}? Their sessions end.`)) return;
          try {
            await del(`/api/v1/users/${seg(u.name)}`);
            ctx.notify(`User ${u.name} removed.`);
            again();
          } catch (e) {
            ctx.notify(`Could not remove ${u.name}: ${e.message}`);
          }
        },
      }, 'Remove')),
    },
  ], page.items || []));

  const name = h('input', { name: 'name', required: true, autocomplete: 'off', pattern: '[A-Za-z0-9._-]{1,64}' });
  const role = select('role', roleOptions, 'viewer');
  const pw = h('input', { name: 'password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
  const out = h('p', { class: 'result', role: 'status' });
  append(main, h('section', { class: 'card', 'aria-labelledby': 'add-user-h' },
    h('h2', { id: 'add-user-h' }, 'Add a user'),
    h('form', {
      class: 'filters',
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await post('/api/v1/users', { name: name.value.trim(), role: role.value, password: pw.value });
          ctx.notify(`User ${name.value.trim()} added.`);
          again();
        } catch (e) {
          out.className = 'result error';
          out.textContent = `Refused: ${e.message}`;
        }
      },
    }, field('Name', name, 'Letters, digits, . _ -'), field('Role', role), field('Password', pw, 'At least 12 characters.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add user')), out)));
}

function roleForm(u, ctx, again) {
  const sel = select('role', roleOptions, u.role);
  sel.setAttribute('aria-label', `Role of ${u.name}`);
  return h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await patch(`/api/v1/users/${seg(u.name)}`, { role: sel.value });
        ctx.notify(`${u.name} is now ${sel.value}.`);
        again();
      } catch (e) {
        ctx.notify(`Could not change the role of ${u.name}: ${e.message}`);
      }
    },
  }, sel, h('button', { type: 'submit', class: 'secondary', 'aria-label': `Change the role of ${u.name}` }, 'Change'));
}

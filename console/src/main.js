// main.js -- the console's frame: who is logged in, the navigation, and a
// hash router (#/orders, #/machines?hostname=ws*...), so the admin server
// serves one index.html and needs no fallback route. Each page module
// exports render(main, ctx) and builds its content from the API.
import './style.css';
import { can, currentSession, logout, resume, whenLoggedOut } from './api.js';
import { clear, h } from './dom.js';
import * as approvals from './pages/approvals.js';
import * as login from './pages/login.js';
import * as machine from './pages/machine.js';
import * as machines from './pages/machines.js';
import * as order from './pages/order.js';
import * as orders from './pages/orders.js';
import * as threats from './pages/threats.js';
import * as trail from './pages/trail.js';
import * as users from './pages/users.js';
import * as webhooks from './pages/webhooks.js';

// [pattern, page, least role, nav label or null]
const routes = [
  ['/orders', orders, 'viewer', 'Orders'],
  ['/orders/:serial', order, 'viewer', null],
  ['/machines', machines, 'viewer', 'Machines'],
  ['/machines/:id', machine, 'viewer', null],
  ['/approvals', approvals, 'viewer', 'Approvals'],
  ['/threats', threats, 'viewer', 'Threats'],
  ['/trail', trail, 'viewer', 'Admin trail'],
  ['/users', users, 'admin', 'Users'],
  ['/webhooks', webhooks, 'admin', 'Webhooks'],
];

const main = document.getElementById('main');
const top = document.getElementById('top');
const notices = document.getElementById('notices');
let renderSeq = 0;

export function navigate(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = `#${path}`;
}

// A short message in the polite live region; it goes after a while.
export function notify(text) {
  const n = h('p', { class: 'notice' }, text);
  notices.append(n);
  setTimeout(() => n.remove(), 8000);
}

function parseHash() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(1) : '/orders';
  const [path, qs] = raw.split('?');
  return { path, query: new URLSearchParams(qs || '') };
}

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page, role, label] of routes) {
    const pp = pattern.split('/').filter(Boolean);
    if (pp.length !== parts.length) continue;
    const params = {};
    let ok = true;
    pp.forEach((p, i) => {
      if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]);
      else if (p !== parts[i]) ok = false;
    });
    if (ok) return { page, role, params, pattern, label };
  }
  return null;
}

function renderNav(active) {
  clear(top);
  const s = currentSession();
  top.append(h('span', { class: 'brand' }, 'Activation admin'));
  if (!s) return;
  const items = routes.filter(([, , role, label]) => label && can(role));
  top.append(
    h('nav', { 'aria-label': 'Main' },
      h('ul', {}, items.map(([pattern, , , label]) =>
        h('li', {}, h('a', { href: `#${pattern}`, 'aria-current': active === pattern ? 'page' : null }, label))))),
    h('div', { class: 'who' },
      h('span', { id: 'whoami' }, `${s.user} (${s.role})`),
      h('button', {
        type: 'button',
        class: 'secondary',
        onclick: async () => {
          await logout().catch(() => {});
          navigate('/login');
        },
      }, 'Log out')));
}

async function render() {
  const seq = ++renderSeq;
  const { path, query } = parseHash();
  if (!currentSession() || path === '/login') {
    renderNav(null);
    clear(main);
    login.render(main, { query, navigate, done: () => navigate(query.get('next') || '/orders') });
    return;
  }
  const m = match(path);
  renderNav(m ? m.pattern.replace(/\/:.*/, '') : null);
  clear(main);
  if (!m) {
    main.append(h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, h('a', { href: '#/orders' }, 'Go to the orders')));
    return;
  }
  if (!can(m.role)) {
    main.append(h('h1', { tabindex: '-1' }, 'Not allowed'), h('p', {}, 'This page needs the admin role.'));
    return;
  }
  main.setAttribute('aria-busy', 'true');
  try {
    await m.page.render(main, { params: m.params, query, navigate, notify, stale: () => seq !== renderSeq });
  } catch (e) {
    if (seq !== renderSeq) return;
    if (!main.querySelector('h1')) main.append(h('h1', {}, 'This page could not be loaded'));
    main.append(h('p', { class: 'error', role: 'alert' }, `The admin server answered: ${e.message}`));
  } finally {
    main.removeAttribute('aria-busy');
  }
  // Focus goes to the page's heading, so keyboard and screen reader users
  // start at the new content, not at the link they followed.
  const h1 = main.querySelector('h1');
  if (h1 && seq === renderSeq && document.activeElement?.closest('main') === null) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: true });
  }
}

document.getElementById('skip-link').addEventListener('click', (ev) => {
  ev.preventDefault(); // the hash holds the route; the skip link only moves focus
  main.focus();
});

whenLoggedOut(() => {
  if (!location.hash.startsWith('#/login')) location.hash = '#/login';
});
window.addEventListener('hashchange', render);

(async () => {
  try {
    await resume();
  } catch (e) {
    notify(`The admin server did not answer: ${e.message}`);
  }
  render();
})();

// trail.js -- the admin trail: who changed what, when, from where, and the
// result (refusals included); searchable by user, action and time, and
// exportable with the same filters.
import { get } from '../api.js';
import { append, field, h, table } from '../dom.js';
import { fromUnix, query, time, toUnix } from '../format.js';

const names = ['user', 'action', 'from', 'to'];

export async function render(main, ctx) {
  const f = {};
  for (const k of names) f[k] = ctx.query.get(k) || '';
  const cursor = ctx.query.get('cursor') || '';
  const user = h('input', { name: 'user', value: f.user });
  const action = h('input', { name: 'action', value: f.action, placeholder: 'order.import' });
  const from = h('input', { name: 'from', type: 'datetime-local', value: fromUnix(f.from) });
  const to = h('input', { name: 'to', type: 'datetime-local', value: fromUnix(f.to) });
  append(main, h('h1', {}, 'Admin trail'), h('form', {
    class: 'filters',
    role: 'search',
    onsubmit: (ev) => {
      ev.preventDefault();
      ctx.navigate(`/trail${query({ user: user.value.trim(), action: action.value.trim(), from: toUnix(from.value), to: toUnix(to.value) })}`);
    },
  }, field('User', user), field('Action', action), field('From (UTC)', from), field('To (UTC)', to),
  h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Search'))));

  const page = await get(`/api/v1/trail${query({ ...f, cursor })}`);
  if (ctx.stale()) return;
  append(main, h('p', { class: 'exports' }, 'Export: ',
    ['csv', 'json', 'xlsx'].map((format) =>
      h('a', { class: 'button secondary', href: `/api/v1/trail/export${query({ format, ...f })}`, download: '' }, format.toUpperCase()))));
  append(main, table({ text: 'Trail entries, newest first', hidden: true }, [
    { title: 'When', cell: (e) => time(e.at ?? e.t) },
    { title: 'User', cell: (e) => e.user ?? '' },
    { title: 'Action', cell: (e) => e.action ?? '' },
    { title: 'Target', cell: (e) => e.target ?? '' },
    { title: 'Result', cell: (e) => h('span', { class: e.result === 'ok' ? 'ok' : 'refused' }, e.result ?? '') },
    { title: 'Address', cell: (e) => e.addr ?? e.client_addr ?? e.address ?? '' },
  ], page.items || [], 'No entry matches.'));
  if (page.next_cursor) append(main, h('p', {}, h('a', { class: 'button', href: `#/trail${query({ ...f, cursor: page.next_cursor })}` }, 'Next page')));
}

// webhooks.js -- webhook endpoints and their delivery log (admin only).
// The server makes each endpoint's secret, which signs every delivery
// (X-PA-Signature), and shows it once, in the answer to the creation: the
// page shows it then and never again.
import { del, get, post, seg } from '../api.js';
import { append, clear, field, h, table } from '../dom.js';
import { time } from '../format.js';

const clearMain = (main) => clear(main);

export const events = ['seats.below_threshold', 'key.machine_limit', 'order.expiring', 'key.revoked', 'deactivation.awaiting_approval'];

export async function render(main, ctx) {
  const [hooks, deliveries] = await Promise.all([
    get('/api/v1/webhooks'),
    get('/api/v1/webhooks/deliveries').catch(() => ({ items: [] })),
  ]);
  if (ctx.stale()) return;
  const again = () => ctx.navigate('/webhooks');
  append(main, h('h1', {}, 'Webhooks'), table({ text: 'Webhook endpoints', hidden: true }, [
    { title: 'Id', cell: (w) => w.id },
    { title: 'URL', cell: (w) => w.url },
    { title: 'Events', cell: (w) => (w.events || []).join(', ') },
    { title: 'Created', cell: (w) => time(w.created_at) },
    {
      title: 'Remove',
      cell: (w) => h('button', {
        type: 'button',
        class: 'danger',
        'aria-label': `Remove webhook ${w.url}`,
        onclick: async () => {
          if (!window.confirm(`Remove the webhook ${w.url}?`)) return;
          try {
            await del(`/api/v1/webhooks/${seg(w.id)}`);
            ctx.notify('Webhook removed.');
            again();
          } catch (e) {
            ctx.notify(`Could not remove it: ${e.message}`);
          }
        },
      }, 'Remove'),
    },
  ], hooks.items || [], 'No webhook yet.'));

  const url = h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://receiver.example/hook' });
  const boxes = events.map((e) => h('input', { type: 'checkbox', name: 'events', value: e, checked: true }));
  const out = h('p', { class: 'result', role: 'status' });
  append(main, h('section', { class: 'card', 'aria-labelledby': 'add-hook-h' },
    h('h2', { id: 'add-hook-h' }, 'Add a webhook'),
    h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const w = await post('/api/v1/webhooks', { url: url.value.trim(), events: boxes.filter((b) => b.checked).map((b) => b.value) });
          await render(clearMain(main), ctx);
          append(main.querySelector('#add-hook-h').parentElement, h('div', { class: 'banner', role: 'status', id: 'new-secret' },
            h('p', {}, `Webhook ${w.id} added. Its signing secret, shown only now: `),
            h('p', {}, h('code', { class: 'secret' }, w.secret))));
        } catch (e) {
          out.className = 'result error';
          out.textContent = `Refused: ${e.message}`;
        }
      },
    },
    h('div', { class: 'filters' }, field('URL', url, 'https://..., or http://127.0.0.1... for a local receiver')),
    h('fieldset', {}, h('legend', {}, 'Events'),
      boxes.map((b, i) => h('label', { class: 'check' }, b, ` ${events[i]}`))),
    h('button', { type: 'submit' }, 'Add webhook'), out)));

  append(main, h('section', { class: 'card' }, h('h2', {}, 'Deliveries'), table({ text: 'Deliveries, newest first', hidden: true }, [
    { title: 'When', cell: (d) => time(d.at) },
    { title: 'Event', cell: (d) => d.event ?? '' },
    { title: 'Webhook', cell: (d) => d.webhook ?? '' },
    { title: 'Try', cell: (d) => String(d.try ?? '') },
    { title: 'Status', cell: (d) => (d.status ? String(d.status) : '—') },
    { title: 'Outcome', cell: (d) => [d.outcome ?? '', d.error ? ` (${d.error})` : ''] },
  ], deliveries.items || [], 'No delivery yet.')));
}

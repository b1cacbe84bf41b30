// orders.js -- the orders page: every order with its seat bar, a banner for
// each order below its seat warning, the .license import, and the
// organisations (create, rename, move an order, retire an order).
import { ApiError, can, get, post, put, patch, request, seg } from '../api.js';
import { append, clear, field, h, seatBar, select, table } from '../dom.js';
import { query, time } from '../format.js';
import { seatsOf, serialOf, warningText } from '../seats.js';

export async function render(main, ctx) {
  const q = ctx.query.get('q') || '';
  const org = ctx.query.get('organisation') || '';
  const cursor = ctx.query.get('cursor') || '';
  const [page, orgs] = await Promise.all([
    get(`/api/v1/orders${query({ q, organisation: org, cursor })}`),
    get('/api/v1/organisations').catch(() => ({ items: [] })),
  ]);
  if (ctx.stale()) return;
  const items = page.items || [];
  const details = await orderDetails(items);
  if (ctx.stale()) return;
  const organisations = orgs.items || [];
  const orgName = new Map(organisations.map((o) => [String(o.id), o.name]));
  const operator = can('operator');

  // The banner's box is always there (an alert region announces what is
  // put into it later); it is filled and shown when an order runs low.
  const banner = h('div', { class: 'banner warn', role: 'alert', id: 'seat-warnings' });
  append(main, h('h1', {}, 'Orders'), banner);
  showWarnings(banner, details);

  // Search
  const qIn = h('input', { name: 'q', type: 'search', value: q });
  const orgSel = select('organisation', [['', 'any'], ...organisations.map((o) => [o.id, o.name])], org);
  append(main, h('form', {
    class: 'filters',
    role: 'search',
    onsubmit: (ev) => {
      ev.preventDefault();
      ctx.navigate(`/orders${query({ q: qIn.value.trim(), organisation: orgSel.value })}`);
    },
  }, field('Customer or serial (prefix)', qIn), field('Organisation', orgSel), h('button', { type: 'submit' }, 'Search')));

  append(main, table({ text: 'Orders', hidden: true }, [
    { title: 'Serial', cell: (o) => h('a', { href: `#/orders/${seg(serialOf(o))}` }, serialOf(o)) },
    { title: 'Customer', cell: (o) => o.customer ?? '' },
    { title: 'Organisation', cell: (o) => (operator ? moveControl(o, organisations, ctx) : orgName.get(String(o.organisation)) ?? '—') },
    { title: 'Mode', cell: (o) => o.mode ?? '' },
    { title: 'Seats', class: 'seats', cell: (o) => h('div', { 'data-seats': serialOf(o) }, seatCell(details.get(serialOf(o)) ?? o)) },
    { title: 'Valid until', cell: (o) => time(o.valid_until) },
    { title: 'State', cell: (o) => (o.retired ? 'retired' : 'in force') },
    ...(operator ? [{ title: 'Actions', cell: (o) => (o.retired ? '' : retireButton(o, ctx)) }] : []),
  ], items, q || org ? 'No order matches.' : 'No order yet.'));
  if (page.next_cursor) {
    append(main, h('p', {}, h('a', { href: `#/orders${query({ q, organisation: org, cursor: page.next_cursor })}`, class: 'button' }, 'Next page')));
  }

  if (operator) append(main, importForm(ctx));
  append(main, organisationsSection(organisations, operator, ctx));
  watchSeats(main, banner, `/api/v1/orders${query({ q, organisation: org, cursor })}`, ctx);
}

// Each order's own answer, by serial (it holds the seats in use), fetched a
// few at a time; an order whose answer fails shows what was sold only.
async function orderDetails(items) {
  const out = new Map();
  const queue = items.map(serialOf);
  const worker = async () => {
    while (queue.length) {
      const serial = queue.shift();
      try {
        out.set(serial, await get(`/api/v1/orders/${seg(serial)}`));
      } catch {
        /* shown without its seats in use */
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(6, queue.length) }, worker));
  return out;
}

function showWarnings(banner, details) {
  const warnings = [...details.values()].filter((o) => seatsOf(o).warning && !o.retired);
  clear(banner);
  banner.hidden = warnings.length === 0;
  if (warnings.length) {
    banner.append(h('strong', {}, 'Seats running low.'), h('ul', {}, warnings.map((o) => h('li', {}, warningText(o)))));
  }
}

// Seats move while the page is open (machines activate and leave): the
// seat cells and the banner are read again every few seconds and updated
// in place, so a form being filled in keeps its input and its focus.
const refreshMs = 3000;
function watchSeats(main, banner, path, ctx) {
  const timer = setInterval(async () => {
    if (ctx.stale() || !banner.isConnected) {
      clearInterval(timer);
      return;
    }
    if (document.hidden) return; /* a tab in the background asks nothing */
    try {
      const page = await get(path);
      const details = await orderDetails(page.items || []);
      if (ctx.stale()) return;
      for (const [serial, o] of details) {
        const cell = main.querySelector(`[data-seats="${CSS.escape(String(serial))}"]`);
        if (cell) clear(cell).append(seatCell(o));
      }
      showWarnings(banner, details);
    } catch {
      /* the next tick tries again; a lost session goes to the login page */
    }
  }, refreshMs);
}

function seatCell(o) {
  const s = seatsOf(o);
  if (!s.known) return h('span', {}, `${s.total} sold`);
  if (s.unlimited) return h('span', {}, `${s.used} used (unlimited)`);
  return seatBar(s.used, s.total, s.warning);
}

function retireButton(o, ctx) {
  return h('button', {
    type: 'button',
    class: 'danger',
    'aria-label': `Retire order ${serialOf(o)}`,
    onclick: async () => {
      if (!window.confirm(`Retire order ${serialOf(o)}? Its machines stop renewing.`)) return;
      try {
        await post(`/api/v1/orders/${seg(serialOf(o))}/retire`);
        ctx.notify(`Order ${serialOf(o)} retired.`);
        ctx.navigate(`/orders`);
      } catch (e) {
        ctx.notify(`Could not retire ${serialOf(o)}: ${e.message}`);
      }
    },
  }, 'Retire');
}

function moveControl(o, organisations, ctx) {
  const sel = select('organisation', [['', '(none)'], ...organisations.map((g) => [g.id, g.name])], o.organisation ?? '');
  sel.setAttribute('aria-label', `Organisation of order ${serialOf(o)}`);
  return h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const id = sel.value === '' ? null : organisations.find((g) => String(g.id) === sel.value)?.id ?? sel.value;
        await put(`/api/v1/orders/${seg(serialOf(o))}/organisation`, { organisation: id });
        ctx.notify(`Order ${serialOf(o)} moved.`);
        ctx.navigate('/orders');
      } catch (e) {
        ctx.notify(`Could not move ${serialOf(o)}: ${e.message}`);
      }
    },
  }, sel, h('button', { type: 'submit', class: 'secondary', 'aria-label': `Move order ${serialOf(o)}` }, 'Move'));
}

function importForm(ctx) {
  const file = h('input', { type: 'file', name: 'license', accept: '.license', required: true });
  const out = h('p', { class: 'result', role: 'status' });
  return h('section', { class: 'card', 'aria-labelledby': 'import-h' },
    h('h2', { id: 'import-h' }, 'Import an order'),
    h('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = file.files[0];
        if (!f) return;
        out.className = 'result';
        out.textContent = `Importing ${f.name}…`;
        try {
          const r = await request('POST', '/api/v1/orders', { body: await f.arrayBuffer(), type: 'application/octet-stream' });
          ctx.notify(`Order ${r?.order ?? ''}: ${r?.result ?? 'imported'}.`);
          ctx.navigate('/orders');
        } catch (e) {
          out.className = 'result error';
          out.textContent = e instanceof ApiError ? `Refused: ${e.message}` : String(e);
        }
      },
    }, field('Order file (.license)', file, 'The signed file from the vendor; the server checks it as "order import" does.'),
    h('button', { type: 'submit' }, 'Import'), out));
}

function organisationsSection(organisations, operator, ctx) {
  const sec = h('section', { class: 'card', 'aria-labelledby': 'orgs-h' }, h('h2', { id: 'orgs-h' }, 'Organisations'));
  sec.append(table({ text: 'Organisations', hidden: true }, [
    { title: 'Name', cell: (g) => (operator ? renameForm(g, ctx) : g.name) },
    { title: 'Orders', cell: (g) => h('a', { href: `#/orders${query({ organisation: g.id })}` }, 'show orders') },
  ], organisations, 'No organisation yet.'));
  if (operator) {
    const name = h('input', { name: 'name', required: true, maxlength: 200 });
    sec.append(h('form', {
      class: 'filters',
      onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          await post('/api/v1/organisations', { name: name.value.trim() });
          ctx.notify(`Organisation ${name.value.trim()} created.`);
          ctx.navigate('/orders');
        } catch (e) {
          ctx.notify(`Could not create it: ${e.message}`);
        }
      },
    }, field('New organisation', name), h('button', { type: 'submit' }, 'Create')));
  }
  return sec;
}

function renameForm(g, ctx) {
  const name = h('input', { name: 'name', value: g.name, required: true, 'aria-label': `Name of organisation ${g.name}` });
  return h('form', {
    class: 'inline',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        await patch(`/api/v1/organisations/${seg(g.id)}`, { name: name.value.trim() });
        ctx.notify('Organisation renamed.');
        ctx.navigate('/orders');
      } catch (e) {
        ctx.notify(`Could not rename it: ${e.message}`);
      }
    },
  }, name, h('button', { type: 'submit', class: 'secondary', 'aria-label': `Rename organisation ${g.name}` }, 'Rename'));
}


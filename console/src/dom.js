// dom.js -- builds the page from plain elements. Text always goes in as
// text nodes (never innerHTML), so nothing an order file, a hostname or a
// trail entry holds can become markup; attributes are set one by one, and
// styles only through the CSSOM, which the CSP allows.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.className = v;
    else if (k === 'checked' || k === 'selected' || k === 'value') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A labelled form field; the label names the control for screen readers and
// a click on it focuses the control.
let fieldSeq = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const parts = [h('label', { for: id }, label), control];
  if (hint) {
    const hid = `${id}-hint`;
    control.setAttribute('aria-describedby', hid);
    parts.push(h('small', { id: hid, class: 'hint' }, hint));
  }
  return h('div', { class: 'field' }, parts);
}

export function select(name, options, current) {
  return h('select', { name },
    options.map(([value, text]) => h('option', { value, selected: String(value) === String(current ?? '') }, text)));
}

// A table from column definitions [{title, cell(row) -> node|text}].
export function table(caption, columns, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: caption.hidden ? 'visually-hidden' : '' }, caption.text ?? caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, columns.map((c) => h('td', { class: c.class }, c.cell(r))))))));
}

// A horizontal used/free bar; the text says the same for everyone.
export function seatBar(used, total, warning) {
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  const free = Math.max(0, total - used);
  return h('div', { class: `seat${warning ? ' seat-warn' : ''}` },
    h('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'seat-text' }, `${used} used / ${free} free of ${total}`));
}

// scenario.mjs -- the console in a real browser (Debian's chromium, driven by
// playwright-core) against the real admin server, activation server and
// installer CLI that test_console_browser.c started. Each step asserts on
// what the page shows; the first one that fails stops the run (exit 1) with
// a screenshot of the page as it was. Screenshots of the main pages are
// kept in PA_SCREENSHOTS as the test's artefacts.
//
// Environment (all set by the driver):
//   PA_CONSOLE_URL      https://127.0.0.1:PORT/ (the admin server, its own certificate)
//   PA_SOURCE_DIR       the source tree (console/node_modules holds playwright-core)
//   PA_WORK_DIR         a scratch directory (machines' facts and states, downloads)
//   PA_SCREENSHOTS      where the screenshots go
//   PA_ORDER_FILE, PA_ORDER_SERIAL   the .license file the operator imports, its serial
//   PA_ORDER_SEATS, PA_ORDER_WARNING its seats and seat warning
//   PA_ACTIVATE, PA_ACT_TARGET, PA_ACT_CA, PA_VENDOR_KEYS, PA_VOLUME_KEY   the installer and what it needs
//   PA_BAD_KEY          a key whose security value is wrong (not genuine), of group PA_GROUP
//   PA_USERS            "operator:PW,viewer:PW,admin:PW"
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`scenario.mjs: ${k} is not set`);
  return v;
};
const URL_ = env('PA_CONSOLE_URL');
const WORK = env('PA_WORK_DIR');
const SHOTS = env('PA_SCREENSHOTS');
const SERIAL = env('PA_ORDER_SERIAL');
const SEATS = Number(env('PA_ORDER_SEATS'));
const GROUP = env('PA_GROUP');
const WARNING = Number(env('PA_ORDER_WARNING'));
const users = Object.fromEntries(env('PA_USERS').split(',').map((p) => p.split(':')));
const { chromium } = await import(pathToFileURL(path.join(env('PA_SOURCE_DIR'), 'console/node_modules/playwright-core/index.mjs')).href);

fs.mkdirSync(SHOTS, { recursive: true });
for (const f of fs.readdirSync(SHOTS)) if (f.startsWith('failed-step-')) fs.rmSync(path.join(SHOTS, f));
let stepNo = 0;
let passed = 0;
let current = null; // the page a failing step is photographed on
const problems = []; // script errors and CSP refusals seen in any page

function check(cond, what) {
  if (!cond) throw new Error(`expected ${what}`);
}

// Polls fn until it returns a truthy value or ms pass; the last value (or
// error) names what was not seen.
async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${stepNo} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`not ok ${stepNo} - ${name}: ${e.message}`);
    if (current) await current.screenshot({ path: path.join(SHOTS, `failed-step-${stepNo}.png`), fullPage: true }).catch(() => {});
    throw e;
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// --- the installer, as a machine of its own --------------------------------
// Each machine gets a facts root (its /etc/machine-id, a NIC's address, a
// host serial) and a state directory; its hostname is set in a UTS
// namespace of its own, as the installer reads it with gethostname().
function machine(n, hostname) {
  const root = path.join(WORK, `facts-${n}`);
  const hex = n.toString(16).padStart(2, '0');
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/machine-id'), `${'c0'.repeat(15)}${hex}\n`);
  fs.mkdirSync(path.join(root, 'sys/class/net/eth0'), { recursive: true });
  fs.writeFileSync(path.join(root, 'sys/class/net/eth0/address'), `02:00:00:00:00:${hex}\n`);
  fs.mkdirSync(path.join(root, 'sys/class/dmi/id'), { recursive: true });
  fs.writeFileSync(path.join(root, 'sys/class/dmi/id/product_serial'), `PF-${hostname}\n`);
  return { n, hostname, root, state: path.join(WORK, `state-${n}`) };
}

function installer(m, args) {
  const argv = ['-u', 'sh', '-c', 'hostname "$0" && exec "$@"', m.hostname, env('PA_ACTIVATE'),
    '--server', env('PA_ACT_TARGET'), '--tls-ca', env('PA_ACT_CA'), '--public-key', env('PA_VENDOR_KEYS'),
    '--state-dir', m.state, '--facts-root', m.root, '--timeout-ms', '5000', ...args];
  const r = spawnSync('unshare', argv, { encoding: 'utf8', timeout: 30000 });
  return { code: r.status, out: `${r.stdout || ''}${r.stderr || ''}${r.error ? r.error.message : ''}` };
}

function activate(m) {
  const r = installer(m, [env('PA_VOLUME_KEY')]);
  check(r.code === 0, `activate on ${m.hostname} to exit 0, got ${r.code}: ${r.out}`);
}

// --- pages ------------------------------------------------------------------
async function newPage(browser) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1366, height: 768 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply)/.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on('dialog', (d) => d.accept());
  page.setDefaultTimeout(10000);
  current = page;
  return page;
}

async function login(page, name) {
  await page.goto(URL_);
  await page.getByLabel('User').fill(name);
  await page.getByLabel('Password').fill(users[name]);
  await page.getByLabel('Password').press('Enter');
  await page.locator('#whoami').filter({ hasText: `${name} (` }).waitFor({ timeout: 10000 });
}

const seatText = (page) => page.locator(`[data-seats="${SERIAL}"]`).textContent();
const seatsShown = (used) => `${used} used / ${SEATS - used} free of ${SEATS}`;

async function searchRows(page) {
  return page.locator('main table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.querySelector('td a')?.textContent));
}

async function apiStatus(page, method, p, json) {
  return page.evaluate(async ([method, p, json]) => {
    const headers = { 'X-CSRF-Token': sessionStorage.getItem('pa-console-csrf') || '' };
    if (json !== null) headers['Content-Type'] = 'application/json';
    const r = await fetch(p, { method, headers, body: json === null ? undefined : JSON.stringify(json) });
    return r.status;
  }, [method, p, json ?? null]);
}

// --- the scenario -----------------------------------------------------------
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const ws = [1, 2, 3].map((n) => machine(n, `ws-000${n}`));
const lab = machine(9, 'lab-0009');
let exit = 1;
try {
  const page = await newPage(browser);

  await step('the login page: labelled fields, a skip link before them', async () => {
    await page.goto(URL_);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await shot(page, 'login');
    // The form takes the focus; the only stop before it is the skip link,
    // which moves the focus to the content.
    check(await page.evaluate(() => document.activeElement?.name) === 'user', 'the focus in the user field');
    await page.keyboard.press('Shift+Tab');
    const focused = await page.evaluate(() => document.activeElement?.textContent);
    check(focused === 'Skip to content', `Shift+Tab to reach the skip link, reached ${JSON.stringify(focused)}`);
    check(await page.locator('#skip-link').isVisible(), 'the focused skip link to be visible');
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.activeElement?.id) === 'main', 'Enter on the skip link to focus the content');
  });

  await step('a wrong password is refused on the page', async () => {
    await page.getByLabel('User').fill('operator');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Login failed' }).waitFor({ timeout: 10000 });
  });

  await step('the operator logs in', async () => {
    await login(page, 'operator');
    await page.getByRole('heading', { name: 'Orders' }).waitFor();
  });

  await step('keyboard: Tab reaches the navigation with a visible focus ring, Enter follows a link', async () => {
    await page.locator('#skip-link').focus();
    let name = '';
    for (let i = 0; i < 12 && name !== 'Machines'; i++) {
      await page.keyboard.press('Tab');
      name = await page.evaluate(() => document.activeElement?.textContent);
    }
    check(name === 'Machines', `Tab to reach the Machines link, stopped at ${JSON.stringify(name)}`);
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(ring !== 'none', `a visible focus ring on the focused link, outline-style ${ring}`);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Machines' }).waitFor();
    await until('the focus on the new page\'s heading', async () => (await page.evaluate(() => document.activeElement?.tagName)) === 'H1');
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement?.name) === 'hostname', 'the next Tab in the first filter');
    await page.getByRole('link', { name: 'Orders', exact: true }).click();
    await page.getByRole('heading', { name: 'Orders' }).waitFor();
  });

  await step('the operator imports the order file and sees its seats', async () => {
    await page.getByLabel('Order file (.license)').setInputFiles(env('PA_ORDER_FILE'));
    await page.getByRole('button', { name: 'Import' }).click();
    await until(`order ${SERIAL} with ${seatsShown(0)}`, async () => (await seatText(page))?.includes(seatsShown(0)));
    check(await page.locator('#seat-warnings').isHidden(), 'no seat warning on a new order');
    await shot(page, 'orders');
  });

  await step('two machines activate: the seat bar moves on the open page', async () => {
    activate(ws[0]);
    activate(ws[1]);
    await until(seatsShown(2), async () => (await seatText(page))?.includes(seatsShown(2)));
    check(await page.locator('#seat-warnings').isHidden(), `no warning with ${SEATS - 2} free seats (warning below ${WARNING})`);
  });

  await step('two more: free seats fall below the warning and the banner appears', async () => {
    activate(ws[2]);
    activate(lab);
    await until(seatsShown(4), async () => (await seatText(page))?.includes(seatsShown(4)));
    const banner = page.locator('#seat-warnings');
    await until('the seat-warning banner', () => banner.isVisible());
    const text = await banner.textContent();
    check(text.includes(`Order ${SERIAL}`) && text.includes(`${SEATS - 4} free seat`), `the banner to name the order and its free seats: ${text}`);
    await shot(page, 'orders-warning');
  });

  await step('the order\'s own page: its seats, warning and terms', async () => {
    await page.getByRole('link', { name: SERIAL, exact: true }).click();
    await page.getByRole('heading', { name: `Order ${SERIAL}` }).waitFor();
    const text = await page.locator('main').textContent();
    check(text.includes(seatsShown(4)) && text.includes(`Warning below ${WARNING} free seats.`), `the seats and the warning level: ${text.slice(0, 300)}`);
    check(await page.getByRole('alert').filter({ hasText: `Order ${SERIAL}` }).isVisible(), 'the warning on the order\'s page');
    check(text.includes('Console Corp') && text.includes('permanent'), 'the order\'s customer and mode');
    await shot(page, 'order');
    await page.getByRole('link', { name: 'Orders', exact: true }).first().click();
  });

  await step('a key that is not genuine is refused (for the threat view)', async () => {
    const r = installer(machine(20, 'bad-0020'), [env('PA_BAD_KEY')]);
    check(r.code === 7, `activate with a forged key to exit 7 (not genuine), got ${r.code}: ${r.out}`);
  });

  await step('machine search by hostname prefix', async () => {
    await page.getByRole('link', { name: 'Machines', exact: true }).click();
    await page.getByLabel('Hostname').fill('ws-*');
    // The directory follows the machine logs a moment behind: search again until it has them.
    await until('three ws-* machines', async () => {
      await page.getByRole('button', { name: 'Search' }).click();
      await page.locator('#result-count').waitFor({ timeout: 5000 });
      const names = await searchRows(page);
      return names.length === 3 && names.every((n) => /^ws-000[123]$/.test(n)) ? names : false;
    });
    check(page.url().includes('hostname=ws-*') || page.url().includes('hostname=ws-%2A'), `the filter in the address: ${page.url()}`);
    await shot(page, 'machines');
  });

  await step('an exact hostname finds one machine; status filter and paging', async () => {
    await page.getByLabel('Hostname').fill('lab-0009');
    await page.getByRole('button', { name: 'Search' }).click();
    await until('lab-0009 alone', async () => JSON.stringify(await searchRows(page)) === '["lab-0009"]');
    await page.getByLabel('Hostname').fill('*');
    await page.getByLabel('Per page').selectOption('25');
    await page.getByLabel('Order').fill(SERIAL);
    await page.getByLabel('Hostname').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await until('the order\'s four machines', async () => (await searchRows(page)).length === 4);
  });

  await step('paging with next_cursor', async () => {
    await page.goto(`${URL_}#/machines?order=${SERIAL}&limit=2`);
    await until('a first page of two', async () => (await searchRows(page)).length === 2);
    const first = await searchRows(page);
    await page.getByRole('link', { name: 'Next page' }).click();
    await until('a second page', async () => {
      const rows = await searchRows(page);
      return rows.length === 2 && !rows.some((r) => first.includes(r));
    });
    const all = [...first, ...(await searchRows(page))].sort();
    check(JSON.stringify(all) === '["lab-0009","ws-0001","ws-0002","ws-0003"]', `the two pages to hold the four machines once: ${all}`);
    check(await page.getByText('Last page.').isVisible(), 'no page after the second');
    await page.getByRole('link', { name: 'First page' }).click();
    await until('the first page again', async () => JSON.stringify(await searchRows(page)) === JSON.stringify(first));
  });

  await step('the XLSX export of the search holds its rows', async () => {
    await page.getByLabel('Order').fill('');
    await page.getByLabel('Hostname').fill('ws-*');
    await page.getByRole('button', { name: 'Search' }).click();
    await until('three rows', async () => (await searchRows(page)).length === 3);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'XLSX' }).click()]);
    const file = path.join(WORK, 'machines.xlsx');
    await dl.saveAs(file);
    const py = spawnSync('/usr/bin/python3', ['-c', [
      'import json, sys, openpyxl',
      'ws = openpyxl.load_workbook(sys.argv[1], read_only=True).active',
      'rows = [[c.isoformat() if hasattr(c, "isoformat") else c for c in r] for r in ws.iter_rows(values_only=True)]',
      'print(json.dumps(rows))',
    ].join('\n'), file], { encoding: 'utf8' });
    check(py.status === 0, `openpyxl to read the export: ${py.stderr}`);
    const rows = JSON.parse(py.stdout);
    const head = rows[0];
    const want = ['id', 'group', 'serial', 'order', 'hostname', 'ip', 'macs', 'host_serial', 'os', 'status', 'first_seen', 'last_seen', 'expires_at'];
    check(JSON.stringify(head) === JSON.stringify(want), `the export's columns ${want.join(' ')}, got ${JSON.stringify(head)}`);
    const body = rows.slice(1).filter((r) => r.some((c) => c !== null));
    const col = (name) => head.indexOf(name);
    check(body.length === 3, `3 data rows, got ${body.length}`);
    const hosts = body.map((r) => r[col('hostname')]).sort();
    check(JSON.stringify(hosts) === '["ws-0001","ws-0002","ws-0003"]', `the three ws hosts, got ${JSON.stringify(hosts)}`);
    for (const r of body) {
      check(String(r[col('order')]) === SERIAL, `order ${SERIAL} in every row, got ${r[col('order')]}`);
      check(r[col('status')] === 'active', `status active, got ${r[col('status')]}`);
      check(String(r[col('macs')]).includes('02:00:00:00:00:0'), `the machine's MAC, got ${r[col('macs')]}`);
      check(/^\d{4}-\d\d-\d\d/.test(String(r[col('first_seen')])), `first_seen as a date, got ${r[col('first_seen')]}`);
    }
    for (const format of ['CSV', 'JSON']) {
      const href = await page.getByRole('link', { name: format }).getAttribute('href');
      check(href.startsWith(`/api/v1/machines/export?format=${format.toLowerCase()}&`) && href.includes('hostname=ws-'), `the ${format} link to carry the search: ${href}`);
    }
  });

  await step('machine detail shows the history', async () => {
    await page.getByRole('link', { name: 'ws-0001' }).click();
    await page.getByRole('heading', { name: 'Machine ws-0001' }).waitFor();
    await until('an activation in the history', async () => (await page.locator('main table').textContent()).includes('activated'));
    await shot(page, 'machine');
  });

  await step('a deactivation request waits in the approvals queue and is approved', async () => {
    const r = installer(ws[0], ['deactivate']);
    check(r.code === 20, `activate deactivate to exit 20 (awaiting approval), got ${r.code}: ${r.out}`);
    await page.getByRole('link', { name: 'Approvals' }).click();
    const approve = page.getByRole('button', { name: 'Approve deactivation: ws-0001' });
    await until('ws-0001 in the queue', async () => {
      if (await approve.isVisible()) return true;
      await page.reload();
      await page.getByRole('heading', { name: 'Approvals' }).waitFor();
      return approve.isVisible();
    });
    await shot(page, 'approvals');
    await approve.click();
    await page.getByText('No deactivation is waiting.').waitFor({ timeout: 10000 });
  });

  await step('the seat frees and the banner goes', async () => {
    await page.getByRole('link', { name: 'Orders' }).click();
    await until(seatsShown(3), async () => (await seatText(page))?.includes(seatsShown(3)));
    await until('no banner', () => page.locator('#seat-warnings').isHidden());
    const r = installer(ws[0], ['renew']);
    check(r.code === 21, `the approved machine's renewal to answer deactivated (21), got ${r.code}: ${r.out}`);
  });

  await step('the operator force-deactivates a machine from its page', async () => {
    await page.getByRole('link', { name: 'Machines', exact: true }).click();
    await page.getByLabel('Hostname').fill('lab-0009');
    await page.getByRole('button', { name: 'Search' }).click();
    await until('lab-0009 found', async () => JSON.stringify(await searchRows(page)) === '["lab-0009"]');
    await page.getByRole('link', { name: 'lab-0009' }).click();
    await page.getByRole('button', { name: 'Force deactivate: lab-0009' }).click();
    await page.getByText('Machine deactivated: lab-0009.').waitFor();
    const r = installer(lab, ['renew']);
    check(r.code === 21, `the deactivated machine's renewal to answer deactivated (21), got ${r.code}: ${r.out}`);
    await page.getByRole('link', { name: 'Orders', exact: true }).click();
    await until(seatsShown(2), async () => (await seatText(page))?.includes(seatsShown(2)));
  });

  await step('organisations: create, rename, move the order', async () => {
    await page.getByLabel('New organisation').fill('Demo Group');
    await page.getByRole('button', { name: 'Create' }).click();
    const nameBox = page.getByLabel('Name of organisation Demo Group');
    await nameBox.waitFor({ timeout: 10000 });
    await nameBox.fill('Demo Group East');
    await page.getByRole('button', { name: 'Rename organisation Demo Group' }).click();
    await page.getByLabel('Name of organisation Demo Group East').waitFor({ timeout: 10000 });
    await page.getByLabel(`Organisation of order ${SERIAL}`).selectOption({ label: 'Demo Group East' });
    await page.getByRole('button', { name: `Move order ${SERIAL}` }).click();
    await until('the order under its organisation', async () => {
      const sel = page.getByLabel(`Organisation of order ${SERIAL}`);
      return (await sel.evaluate((s) => s.selectedOptions[0]?.textContent)) === 'Demo Group East';
    });
  });

  await step('the admin trail shows the operator\'s changes', async () => {
    await page.getByRole('link', { name: 'Admin trail' }).click();
    await page.getByLabel('User').fill('operator');
    await page.getByRole('button', { name: 'Search' }).click();
    await until('the operator\'s changes in the trail', async () => {
      const t = await page.locator('main table').textContent();
      return ['order.import', 'machine.approve', 'machine.deactivate', 'organisation.create', 'organisation.rename'].every((a) => t.includes(a)) && t.includes(SERIAL);
    });
    const href = await page.getByRole('link', { name: 'CSV' }).getAttribute('href');
    check(href === '/api/v1/trail/export?format=csv&user=operator', `the trail's CSV link to carry the filter: ${href}`);
    await shot(page, 'trail');
  });

  await step('the operator retires the standing order', async () => {
    await page.getByRole('link', { name: 'Orders' }).click();
    await page.getByRole('button', { name: 'Retire order 20261201' }).click();
    await until('order 20261201 retired', async () => {
      const row = page.locator('main table tbody tr').filter({ hasText: '20261201' });
      return (await row.textContent()).includes('retired');
    });
  });

  await step('the threat view draws its charts', async () => {
    await page.getByRole('link', { name: 'Threats' }).click();
    for (const h2 of ['Not-genuine rate per group', 'Rate-limit refusals', 'Top addresses by refusals', 'Revocations']) {
      await page.getByRole('heading', { name: h2 }).waitFor({ timeout: 10000 });
    }
    // The forged key's refusal reaches the counters at the next flush.
    const card = (name) => page.locator('section.chart').filter({ has: page.getByRole('heading', { name }) });
    await until('the not-genuine refusal in the chart\'s numbers', async () => {
      await page.reload();
      await page.getByRole('heading', { name: 'Not-genuine rate per group' }).waitFor();
      const t = await card('Not-genuine rate per group').locator('table').textContent().catch(() => '');
      return t.includes(`group ${GROUP}`) && t.includes('(1)');
    });
    check(await card('Not-genuine rate per group').locator('canvas').count() === 1, 'a chart drawn for the not-genuine rate');
    const top = await card('Top addresses by refusals').locator('table').textContent();
    check(top.includes('127.0.0.1'), `the refusing address among the top addresses: ${top}`);
    await shot(page, 'threats');
  });

  await step('a change without the session\'s CSRF token is refused', async () => {
    const st = await page.evaluate(async () => (await fetch('/api/v1/organisations', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'No Token' }),
    })).status);
    check(st === 403, `POST /api/v1/organisations without X-CSRF-Token to answer 403, got ${st}`);
    const list = await page.evaluate(async () => (await fetch('/api/v1/organisations')).json());
    check(!JSON.stringify(list).includes('No Token'), 'nothing created without the token');
  });

  await step('the operator may not manage users (403 from the server)', async () => {
    check(!(await page.getByRole('link', { name: 'Users' }).isVisible()), 'no Users link for an operator');
    const st = await apiStatus(page, 'GET', '/api/v1/users');
    check(st === 403, `GET /api/v1/users as operator to answer 403, got ${st}`);
  });

  const admin = await newPage(browser);
  await step('the admin sees the users and webhooks', async () => {
    await login(admin, 'admin');
    await admin.getByRole('link', { name: 'Users' }).click();
    await admin.getByRole('heading', { name: 'Users' }).waitFor();
    await until('operator and viewer listed', async () => {
      const t = await admin.locator('main table').textContent();
      return t.includes('operator') && t.includes('viewer');
    });
    await shot(admin, 'users');
  });

  await step('the admin adds a user, changes its role and removes it', async () => {
    await admin.getByLabel('Name', { exact: true }).fill('auditor');
    await admin.getByLabel('Role', { exact: true }).selectOption('viewer');
    await admin.getByLabel('Password', { exact: true }).fill('auditor-password-1');
    await admin.getByRole('button', { name: 'Add user' }).click();
    const role = admin.getByLabel('Role of auditor', { exact: true });
    await role.waitFor();
    check(await role.inputValue() === 'viewer', 'auditor added as viewer');
    await role.selectOption('operator');
    await admin.getByRole('button', { name: 'Change the role of auditor' }).click();
    await until('auditor an operator', async () => (await admin.getByLabel('Role of auditor', { exact: true }).inputValue()) === 'operator');
    await admin.getByRole('button', { name: 'Remove user auditor' }).click();
    await until('auditor gone', async () => !(await admin.locator('main table').textContent()).includes('auditor'));
  });

  await step('the admin adds a webhook (its secret shown once) and removes it', async () => {
    await admin.getByRole('link', { name: 'Webhooks' }).click();
    await admin.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await admin.getByLabel('URL').fill('http://127.0.0.1:9/hook');
    await admin.getByRole('button', { name: 'Add webhook' }).click();
    const secret = await admin.locator('#new-secret code').textContent({ timeout: 10000 });
    check(secret.length >= 32, `a signing secret shown, got ${JSON.stringify(secret)}`);
    check((await admin.locator('main table').first().textContent()).includes('http://127.0.0.1:9/hook'), 'the webhook listed');
    await shot(admin, 'webhooks');
    await admin.getByRole('link', { name: 'Orders' }).click();
    await admin.getByRole('link', { name: 'Webhooks' }).click();
    check(!(await admin.locator('main').textContent()).includes(secret), 'the secret not shown again');
    await admin.getByRole('button', { name: 'Remove webhook http://127.0.0.1:9/hook' }).click();
    await admin.getByText('No webhook yet.').waitFor();
  });

  const viewer = await newPage(browser);
  await step('a viewer sees the orders but no controls', async () => {
    await login(viewer, 'viewer');
    await until(seatsShown(2), async () => (await seatText(viewer))?.includes(seatsShown(2)));
    check(!(await viewer.getByRole('heading', { name: 'Import an order' }).isVisible()), 'no import form for a viewer');
    check((await viewer.getByRole('button', { name: /^Retire/ }).count()) === 0, 'no retire button for a viewer');
    await shot(viewer, 'viewer-orders');
  });

  await step('a viewer cannot change anything: the server answers 403', async () => {
    const tries = [
      ['POST', `/api/v1/orders/${SERIAL}/retire`, {}],
      ['POST', '/api/v1/organisations', { name: 'Viewer Org' }],
      ['PUT', `/api/v1/orders/${SERIAL}/organisation`, { organisation: null }],
      ['POST', '/api/v1/revocations', { group: 1, serial: 1, reason: 'test' }],
      ['POST', '/api/v1/users', { name: 'mallory', role: 'admin', password: 'a-long-password-1' }],
    ];
    for (const [m, p, body] of tries) {
      const st = await apiStatus(viewer, m, p, body);
      check(st === 403, `${m} ${p} as viewer to answer 403, got ${st}`);
    }
    const ids = await until('a machine id', async () => {
      const r = await viewer.evaluate(async () => (await fetch('/api/v1/machines?hostname=ws-0002')).json());
      return r.items?.length ? r.items.map((m) => m.id) : false;
    });
    const st = await apiStatus(viewer, 'POST', `/api/v1/machines/${encodeURIComponent(ids[0])}/deactivate`, {});
    check(st === 403, `POST machines/ID/deactivate as viewer to answer 403, got ${st}`);
    const order = await viewer.evaluate(async (s) => (await fetch(`/api/v1/orders/${s}`)).json(), SERIAL);
    check(!order.retired, 'the order still in force after the viewer\'s tries');
  });

  await step('the viewer\'s refused tries are in the admin trail', async () => {
    current = admin;
    await admin.getByRole('link', { name: 'Admin trail' }).click();
    await admin.getByLabel('User').fill('viewer');
    await admin.getByRole('button', { name: 'Search' }).click();
    await until('refusals of the viewer', async () => {
      const rows = await admin.locator('main table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.textContent));
      return rows.filter((r) => !r.includes('session.login') && !/\bok\b/.test(r)).length >= 5;
    });
  });

  await step('no page broke the content security policy or threw', async () => {
    check(problems.length === 0, `no script error or CSP refusal, got: ${problems.join(' | ')}`);
  });
  exit = 0;
} catch {
  exit = 1;
} finally {
  await browser.close();
}
console.log(`console scenario: ${passed} passed, ${exit ? 1 : 0} failed`);
process.exit(exit);

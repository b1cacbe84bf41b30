#!/usr/bin/env node
// activate.js -- an activation client in Node.js, written from the .proto
// files alone, to prove that installers in other languages need nothing
// else from us: the service and messages come from protos/ at run time
// (@grpc/proto-loader for the calls, protobufjs to read the signed License),
// and the license is checked with node:crypto exactly as the contract in
// activation.proto says ("Batch signatures"): hash the exact bytes into a
// leaf and up tree_path to the root (RFC 9162's folding, written here),
// verify the Ed25519 signature over "pa-license-tree-v1" 0x00 tree_size
// root first, then parse, then check the signing key id and the machine
// binding. Copies with another tree_index or tree_size, an extra, forged or
// flipped path hash, or a flipped license or signature byte must not verify.
// It binds the activation to a place key of its own (an Ed25519 key pair made
// with node:crypto; the public half goes in ActivateRequest.place_key) and
// signs Renew and Deactivate with it ("Proof of possession" in the .proto);
// with --renew it first checks that a copy of the license without that key
// (another key's proof, a tampered signature) is refused.
// A license that comes with an order (an on-premises server of a volume
// order) is trusted only through the chain activation.proto describes: the
// order's Ed25519 signature over "pa-order-v1" 0x00 order-bytes with the
// vendor's order key (--order-public-key), then the license's signature with
// the order's delegated_key, then the license naming that order's serial and
// revision, product and edition (Order from volume/v1/order.proto).
// A volume answer without a license (pending) prints result "pending".
// Every Activate carries ActivateRequest.components: the five components of
// docs/machines.md, each HMAC-SHA256 keyed with this installer's own salt
// over "pa-component-v1" 0x00 name 0x00 value, from values it makes up for
// its machine. With --rebind (a key of a group with --machine-match 3) it
// activates a machine, then the same machine with a new MAC and machine_id
// (the place must move: `rebound`, still one place), then another machine
// sharing two components (a new place).
// The channel is TLS, trusting the CA in --ca, as every installer's must be.
//
// Usage: node activate.js --target HOST:PORT --ca PEM --proto-dir DIR --public-key PEM
//                         --key PRODUCT-KEY [--order-public-key PEM] [--machine-id HEX64]
//                         [--renew] [--deactivate] [--rebind]
// Prints one JSON object; exits 0 when every step and check passed, else 1
// (then with the status code and the "error-reason" trailer, if any).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

function parseArgs(argv) {
  const opts = { renew: false, deactivate: false, rebind: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n'));
      process.exit(0);
    } else if (a === '--renew' || a === '--deactivate' || a === '--rebind') {
      opts[a.slice(2)] = true;
    } else if (['--target', '--ca', '--proto-dir', '--public-key', '--key', '--machine-id', '--order-public-key'].includes(a) && i + 1 < argv.length) {
      opts[a.slice(2).replaceAll('-', '_')] = argv[++i];
    } else {
      throw new Error(`unknown or incomplete argument ${a} (see --help)`);
    }
  }
  for (const need of ['target', 'ca', 'proto_dir', 'public_key', 'key']) {
    if (!opts[need]) throw new Error(`--${need.replace('_', '-')} is required`);
  }
  return opts;
}

// The raw 32 bytes of an Ed25519 public key.
function rawPublicKey(publicKey) {
  return Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
}

// key_id as every component computes it: first 16 hex of SHA-256 over the raw 32-byte Ed25519 key.
function keyIdOf(publicKey) {
  return crypto.createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16);
}

// The proof of activation.proto: TAG || 0x00 || license_id || machine_id || timestamp (int64 BE),
// signed with the place key's private half.
function proof(op, licenseId, machineId, placeKey, timestamp = Math.floor(Date.now() / 1000)) {
  const time = Buffer.alloc(8);
  time.writeBigInt64BE(BigInt(timestamp));
  const message = Buffer.concat([Buffer.from(`pa-${op}-v1\0`, 'ascii'), Buffer.from(licenseId, 'ascii'), machineId, time]);
  return {
    place_key: rawPublicKey(placeKey.publicKey),
    timestamp: String(timestamp),
    signature: crypto.sign(null, message, placeKey.privateKey),
  };
}

const COMPONENT_SALT = 'interop-node-vendor';

// Made-up hardware of the machine called `tag`: every value differs per tag.
function machineValues(tag) {
  const h = crypto.createHash('sha256').update(tag).digest('hex');
  return {
    dmi_uuid: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`,
    board_serial: `BS${h.slice(32, 42).toUpperCase()}`,
    disk_serial: `WD-${h.slice(42, 54).toUpperCase()}`,
    mac: ['3c', ...h.slice(54, 64).match(/../g)].join(':'),
    machine_id_file: crypto.createHash('md5').update(tag).digest('hex'),
  };
}

// ActivateRequest.components: HMAC-SHA256(salt, "pa-component-v1" 0x00 name 0x00 value).
function components(values) {
  return Object.keys(values).sort().map((name) => ({
    name,
    digest: crypto.createHmac('sha256', COMPONENT_SALT)
      .update(Buffer.concat([Buffer.from(`pa-component-v1\0${name}\0`, 'utf8'), Buffer.from(values[name], 'utf8')]))
      .digest(),
  }));
}

// --rebind: activations of changing machines; returns what each answer said.
async function rebind(client, opts, keys, types) {
  const one = async (values) => {
    const machineId = crypto.randomBytes(32);
    const resp = await call(client, 'Activate', {
      product_key: opts.key, machine_id: machineId, hostname: 'node-rebind', os: `node ${process.version}`,
      arch: process.arch, client_version: 'pa-activate-node-client/0.1.0',
      place_key: rawPublicKey(crypto.generateKeyPairSync('ed25519').publicKey), components: components(values),
    });
    openLicense(resp, keys, types, machineId); // verified, and bound to the new machine_id
    return { count: resp.activation_count, rebound: resp.rebound };
  };
  const values = machineValues('node-rebind-host');
  const first = await one(values);
  values.mac = '3c:00:00:00:00:02'; // a container's next start: new MAC, new machine_id
  const moved = await one(values);
  const clone = { ...machineValues('node-other-host'), disk_serial: values.disk_serial, machine_id_file: values.machine_id_file };
  const other = await one(clone); // the disk itself in another machine: two of five match
  return { first, moved, other };
}

// The "error-reason" trailer of a refused call that was expected to fail.
async function refusedReason(client, method, request) {
  try {
    await call(client, method, request);
  } catch (err) {
    return `${grpc.status[err.code]}/${err.metadata ? err.metadata.get('error-reason')[0] : ''}`;
  }
  throw new Error(`${method} was expected to be refused`);
}

function call(client, method, request) {
  const deadline = new Date(Date.now() + 10000);
  return new Promise((resolve, reject) => {
    client[method](request, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

// The key that must have signed the answer's license: the vendor's, or -- when
// an order came with it -- the key the vendor-signed order delegates.
function licenseSigner(resp, keys, types) {
  if (!resp.order || resp.order.length === 0) {
    if (resp.key_id !== keys.vendorKeyId) throw new Error(`license signed by unknown key ${resp.key_id}`);
    return { key: keys.vendorKey, keyId: keys.vendorKeyId, order: null };
  }
  if (!keys.orderKey) throw new Error('the answer carries an order: --order-public-key is needed to check it');
  if (resp.order_key_id !== keys.orderKeyId) throw new Error(`the order is not signed by the vendor (key ${resp.order_key_id})`);
  const tagged = Buffer.concat([Buffer.from('pa-order-v1\0', 'ascii'), resp.order]);
  if (!crypto.verify(null, tagged, keys.orderKey, resp.order_signature)) throw new Error('the order is not signed by the vendor');
  const order = types.Order.toObject(types.Order.decode(resp.order), { longs: String, enums: String, defaults: true });
  if (order.format_version !== 1) throw new Error(`order format ${order.format_version}`);
  const raw = Buffer.from(order.delegated_key);
  if (raw.length !== 32) throw new Error('the order delegates no server key');
  const key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  const keyId = keyIdOf(key);
  if (resp.key_id !== keyId) throw new Error("the license is not signed by the order's delegated server key");
  return { key, keyId, order };
}

const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();

// The root the license's leaf reaches with its path (RFC 9162 section
// 2.1.3.2), or null when the path does not fit index and size.
function treeRoot(license, index, size, treePath) {
  if (!(size > 0 && size <= 256 && index < size && treePath.length <= 8)) return null;
  if (treePath.some((h) => h.length !== 32)) return null;
  let fn = index, sn = size - 1;
  let r = sha256(Buffer.from([0]), license);
  for (const p of treePath) {
    if (sn === 0) return null;
    if ((fn & 1) || fn === sn) {
      r = sha256(Buffer.from([1]), p, r);
      while (!(fn & 1) && fn !== 0) { fn >>= 1; sn >>= 1; }
    } else {
      r = sha256(Buffer.from([1]), r, p);
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 ? r : null;
}

// Whether `signature` is `key`'s over the tree the license is a leaf of.
function treeSigned(key, license, index, size, treePath, signature) {
  const root = treeRoot(license, index, size, treePath);
  if (!root) return false;
  const sizeBytes = Buffer.alloc(4);
  sizeBytes.writeUInt32BE(size);
  return crypto.verify(null, Buffer.concat([Buffer.from('pa-license-tree-v1\0', 'ascii'), sizeBytes, root]), key, signature);
}

// Every change to the license's place in its tree, or to its bytes, fails
// (proves the checks are real).
function checkTamperingRefused(resp, key) {
  const tp = resp.tree_path.map((h) => Buffer.from(h));
  const flip = (b, i) => { const c = Buffer.from(b); c[i] ^= 1; return c; };
  const cases = {
    'another tree_index': { index: resp.tree_index ^ 1 },
    'a larger tree_size': { size: resp.tree_size + 1 },
    'an extra path hash': { path: tp.concat([sha256(Buffer.from('extra'))]) },
    'a forged path to a two-leaf tree': { index: 1, size: 2, path: [sha256(Buffer.from('forged'))] },
    'a flipped license byte': { license: flip(resp.license, resp.license.length >> 1) },
    'a flipped signature byte': { signature: flip(resp.signature, 5) },
  };
  if (tp.length > 0) {
    cases['a flipped path byte'] = { path: [flip(tp[0], 3)].concat(tp.slice(1)) };
    cases['a path hash short'] = { path: tp.slice(0, -1) };
  }
  if (resp.tree_size > 1) cases['a smaller tree_size'] = { size: resp.tree_size - 1 };
  for (const [what, c] of Object.entries(cases)) {
    const pick = (v, d) => (v === undefined ? d : v);
    if (treeSigned(key, pick(c.license, resp.license), pick(c.index, resp.tree_index), pick(c.size, resp.tree_size),
      pick(c.path, tp), pick(c.signature, resp.signature))) {
      throw new Error(`a license with ${what} verified`);
    }
  }
}

// Verifies a signed license (Activate or Renew response) and returns it parsed.
function openLicense(resp, keys, types, machineId) {
  const License = types.License;
  const signer = licenseSigner(resp, keys, types);
  const treePath = resp.tree_path.map((h) => Buffer.from(h));
  if (!treeSigned(signer.key, resp.license, resp.tree_index, resp.tree_size, treePath, resp.signature)) {
    throw new Error(signer.order ? "the license is not signed by the order's delegated server key" : 'license signature does not verify');
  }
  checkTamperingRefused(resp, signer.key);
  const vendorKey = signer.key, vendorKeyId = signer.keyId;
  const lic = License.toObject(License.decode(resp.license), { longs: String, enums: String, defaults: true });
  if (lic.format_version !== 1) throw new Error(`license format ${lic.format_version}`);
  if (lic.signing_key_id !== vendorKeyId) throw new Error('license names another signing key');
  if (!Buffer.from(lic.machine_id).equals(machineId)) throw new Error('license is for another machine');
  const prefix = lic.key_group.toString(16).padStart(8, '0') + lic.key_serial.toString(16).padStart(8, '0');
  if (!/^[0-9a-f]{32}$/.test(lic.license_id) || !lic.license_id.startsWith(prefix)) {
    throw new Error(`license id ${lic.license_id} does not name group ${lic.key_group} serial ${lic.key_serial}`);
  }
  if (crypto.verify(null, resp.license, vendorKey, resp.signature)) throw new Error('the license bytes alone are signed, not its tree');
  lic.tree = { index: resp.tree_index, size: resp.tree_size, path_len: treePath.length };
  const o = signer.order;
  if (o && (lic.order_serial !== o.service_serial || lic.order_revision !== o.revision)) {
    throw new Error(`the license names order ${lic.order_serial} r${lic.order_revision}, not ${o.service_serial} r${o.revision}`);
  }
  if (o && (lic.product !== o.product || lic.edition !== o.edition || lic.channel !== 'CHANNEL_VOLUME')) {
    throw new Error("the license is not for its order's product, edition and channel");
  }
  lic.order_chain = Boolean(o);
  lic.machine_id = Buffer.from(lic.machine_id).toString('hex');
  return lic;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const loadOptions = { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [opts.proto_dir] };
  const definition = protoLoader.loadSync('activation/v1/activation.proto', loadOptions);
  const Activation = grpc.loadPackageDefinition(definition).activation.v1.Activation;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(opts.proto_dir, target);
  root.loadSync(['activation/v1/activation.proto', 'volume/v1/order.proto'], { keepCase: true });
  const types = { License: root.lookupType('activation.v1.License'), Order: root.lookupType('volume.v1.Order') };

  const vendorKey = crypto.createPublicKey(fs.readFileSync(opts.public_key));
  if (vendorKey.asymmetricKeyType !== 'ed25519') throw new Error('the vendor public key is not Ed25519');
  const vendorKeyId = keyIdOf(vendorKey);
  const keys = { vendorKey, vendorKeyId };
  if (opts.order_public_key) {
    keys.orderKey = crypto.createPublicKey(fs.readFileSync(opts.order_public_key));
    keys.orderKeyId = keyIdOf(keys.orderKey);
  }
  const machineId = opts.machine_id ? Buffer.from(opts.machine_id, 'hex') : crypto.randomBytes(32);
  if (machineId.length !== 32) throw new Error('--machine-id must be 64 hex characters');

  const client = new Activation(opts.target, grpc.credentials.createSsl(fs.readFileSync(opts.ca)));
  const out = { result: 'ok', key_id: vendorKeyId, machine_id: machineId.toString('hex') };
  if (opts.rebind) {
    out.rebind = await rebind(client, opts, keys, types);
    client.close();
    console.log(JSON.stringify(out));
    return;
  }
  const placeKey = crypto.generateKeyPairSync('ed25519');
  const activated = await call(client, 'Activate', {
    product_key: opts.key, machine_id: machineId, hostname: 'node-client', os: `node ${process.version}`,
    arch: process.arch, client_version: 'pa-activate-node-client/0.1.0',
    place_key: rawPublicKey(placeKey.publicKey), components: components(machineValues(machineId.toString('hex'))),
  });
  out.activation_count = activated.activation_count;
  if (activated.volume) out.volume = activated.volume;
  if (activated.volume && activated.volume.pending !== 'PENDING_NONE') {
    if (activated.license.length !== 0) throw new Error('a pending answer carries a license');
    out.result = 'pending';
    client.close();
    console.log(JSON.stringify(out));
    return;
  }
  out.license = openLicense(activated, keys, types, machineId);
  const licenseId = out.license.license_id;
  if (opts.renew) {
    // A copy of the license file holds license id and machine id, not the place key.
    const thief = crypto.generateKeyPairSync('ed25519');
    out.copied_license_renew = await refusedReason(client, 'Renew', {
      license_id: licenseId, machine_id: machineId, proof: proof('renew', licenseId, machineId, thief),
    });
    const tampered = proof('renew', licenseId, machineId, placeKey);
    tampered.signature[0] ^= 1;
    out.tampered_proof_renew = await refusedReason(client, 'Renew', { license_id: licenseId, machine_id: machineId, proof: tampered });
    const old = proof('renew', licenseId, machineId, placeKey, Math.floor(Date.now() / 1000) - 3600);
    out.old_proof_renew = await refusedReason(client, 'Renew', { license_id: licenseId, machine_id: machineId, proof: old });
    const renewed = await call(client, 'Renew', {
      license_id: licenseId, machine_id: machineId, proof: proof('renew', licenseId, machineId, placeKey),
    });
    out.renewed = openLicense(renewed, keys, types, machineId);
  }
  if (opts.deactivate) {
    const left = await call(client, 'Deactivate', {
      license_id: licenseId, machine_id: machineId, proof: proof('deactivate', licenseId, machineId, placeKey),
    });
    out.after_deactivate_count = left.activation_count;
  }
  client.close();
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  const code = err.code !== undefined ? grpc.status[err.code] || err.code : undefined;
  // The machine-readable cause of a FAILED_PRECONDITION (activation.proto): trailing metadata.
  const reason = err.metadata ? err.metadata.get('error-reason')[0] : undefined;
  console.log(JSON.stringify({ result: 'error', code, reason, message: err.details || err.message }));
  process.exit(1);
});

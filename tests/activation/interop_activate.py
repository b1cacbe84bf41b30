#!/usr/bin/python3
"""interop_activate.py -- an activation client that is not ours.

Run by test_activation_interop with Debian's python3-grpcio and
python3-protobuf (/usr/bin/python3). The message classes are generated from
protos/ at test time with protoc, exactly as an installer author in another
language would do; the call goes through the generic unary API, so nothing
but the .proto file is shared with the server. The license is verified
without any of our code either, from the .proto's "Batch signatures": its
leaf is hashed up tree_path here (hashlib, RFC 9162's folding), the signed
message built from the root, and the signature over that message checked
with the openssl command line; the key id is recomputed from the PEM. Copies
of the answer with another tree_index, tree_size, an extra, forged or
flipped path hash, a flipped license or signature byte must all fail. The activation is
bound to a place key made with python3-cryptography, and Renew and Deactivate
carry the proof the .proto describes ("Proof of possession"): built here from
that description alone, so a drift between it and the server shows. The channel is TLS,
trusting --ca, as every installer's must be (the server's certificate names
the address in --server).

Every Activate carries ActivateRequest.components: the five hardware
components of docs/machines.md, each hashed here as the contract describes
(HMAC-SHA256 keyed with this installer's own salt over "pa-component-v1"
0x00 name 0x00 value) from values this script makes up for its machine.
With --rebind (a key of a group with --machine-match 3) it checks that
the server moves a place to a machine whose machine_id changed but whose
components mostly did not: a new MAC (and machine_id) keeps the place and
says `rebound`; a machine sharing only two components takes a new place.

With --volume it activates a volume order's key once and checks the license
as activation.proto says an installer must: a license that came with an
order (an on-premises server) is trusted only through the vendor's order key
(--order-public-key): the order's Ed25519 signature over
b"pa-order-v1" + 0x00 + order bytes, then the license's signature with the
order's delegated_key, then the license naming that order (serial, revision)
and its product and edition. order.proto is compiled at test time as well.

Exit 0 and "interop ok" on success ("interop pending" for a volume key that
is pending); otherwise the first failed check."""
import argparse
import base64
import hashlib
import hmac
import os
import struct
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def check(cond, what):
    if not cond:
        print("interop check failed: " + what, file=sys.stderr)
        sys.exit(1)


def key_id_of(pem_path):
    # SubjectPublicKeyInfo of an Ed25519 key: the raw 32-byte key comes last.
    with open(pem_path) as f:
        body = "".join(l.strip() for l in f if not l.startswith("-----"))
    raw = base64.b64decode(body)[-32:]
    return hashlib.sha256(raw).hexdigest()[:16]


def verify_with_openssl(pem_path, message, signature, tmp):
    msg, sig = os.path.join(tmp, "license.bin"), os.path.join(tmp, "license.sig")
    with open(msg, "wb") as f:
        f.write(message)
    with open(sig, "wb") as f:
        f.write(signature)
    r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem_path, "-rawin",
                        "-in", msg, "-sigfile", sig], capture_output=True)
    return r.returncode == 0


def tree_root(license, index, size, path):
    """The root the license's leaf reaches with its path (RFC 9162 section
    2.1.3.2), or None when the path does not fit index and size."""
    sha = lambda b: hashlib.sha256(b).digest()
    if not (0 < size <= 256 and index < size and len(path) <= 8) or any(len(p) != 32 for p in path):
        return None
    fn, sn = index, size - 1
    r = sha(b"\0" + license)
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha(b"\1" + p + r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = sha(b"\1" + r + p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


def tree_message(license, index, size, path):
    """What the signature covers: "pa-license-tree-v1" 0x00 size (u32 BE) root; None if the path does not fit."""
    root = tree_root(license, index, size, list(path))
    return None if root is None else b"pa-license-tree-v1\0" + struct.pack(">I", size) + root


def license_ok(pem_path, resp, tmp, license=None, index=None, size=None, path=None, signature=None):
    """The answer's license verifies (or the same with one part replaced)."""
    pick = lambda v, d: d if v is None else v
    message = tree_message(pick(license, resp.license), pick(index, resp.tree_index), pick(size, resp.tree_size),
                           pick(path, list(resp.tree_path)))
    return message is not None and verify_with_openssl(pem_path, message, pick(signature, resp.signature), tmp)


def check_tampering_refused(pem_path, resp, tmp):
    """Every change to the license's place in its tree, or to the bytes, fails."""
    path = list(resp.tree_path)
    flip = lambda b, i: b[:i] + bytes([b[i] ^ 1]) + b[i + 1:]
    cases = {
        "another tree_index": dict(index=resp.tree_index ^ 1),
        "a larger tree_size": dict(size=resp.tree_size + 1),
        "an extra path hash": dict(path=path + [hashlib.sha256(b"extra").digest()]),
        "a forged path to a two-leaf tree": dict(index=1, size=2, path=[hashlib.sha256(b"forged").digest()]),
        "a flipped license byte": dict(license=flip(resp.license, len(resp.license) // 2)),
        "a flipped signature byte": dict(signature=flip(resp.signature, 5)),
    }
    if path:
        cases["a flipped path byte"] = dict(path=[flip(path[0], 3)] + path[1:])
        cases["a path hash short"] = dict(path=path[:-1])
    if resp.tree_size > 1:
        cases["a smaller tree_size"] = dict(size=resp.tree_size - 1)
    for what, change in cases.items():
        check(not license_ok(pem_path, resp, tmp, **change), "a license with %s is refused" % what)


def check_chain(pb, opb, resp, order_pem, machine):
    """An on-premises answer: vendor order key -> order -> delegated key -> license."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    with open(order_pem, "rb") as f:
        vendor = serialization.load_pem_public_key(f.read())
    check(resp.order_key_id == key_id_of(order_pem), "the order is not signed by the vendor (unknown key %s)"
          % resp.order_key_id)
    try:
        vendor.verify(resp.order_signature, b"pa-order-v1\0" + resp.order)
    except InvalidSignature:
        check(False, "the order is not signed by the vendor")
    order = opb.Order.FromString(resp.order)
    check(order.format_version == 1, "order format_version 1")
    check(len(order.delegated_key) == 32, "the order delegates a server key")
    check(resp.key_id == hashlib.sha256(order.delegated_key).hexdigest()[:16],
          "the license is not signed by the order's delegated server key (key id)")
    try:
        message = tree_message(resp.license, resp.tree_index, resp.tree_size, resp.tree_path)
        check(message is not None, "the license's tree path fits its index and size")
        Ed25519PublicKey.from_public_bytes(order.delegated_key).verify(resp.signature, message)
    except InvalidSignature:
        check(False, "the license is not signed by the order's delegated server key")
    lic = pb.License.FromString(resp.license)
    check(lic.signing_key_id == resp.key_id, "signing_key_id")
    check(lic.machine_id == machine, "machine_id bound")
    check(lic.order_serial == order.service_serial and lic.order_revision == order.revision,
          "the license names its order's serial and revision")
    check(lic.product == order.product and lic.edition == order.edition, "the order's product and edition")
    check(lic.channel == pb.CHANNEL_VOLUME, "channel volume")
    return lic


def volume(args, pb, opb, activate, deactivate, tmp):
    """--volume: one Activate of a volume key, its license verified through its chain."""
    machine = bytes.fromhex(args.machine_id) if args.machine_id else os.urandom(32)
    place_key = Ed25519PrivateKey.generate()
    resp = activate(pb.ActivateRequest(product_key=args.key, machine_id=machine, hostname="interop-host",
                                       os="Debian GNU/Linux", arch="x86_64", client_version="python-grpcio",
                                       place_key=raw_public(place_key),
                                       components=components(pb, machine_values(machine.hex()))), timeout=10)
    v = resp.volume
    if v.pending:
        check(not resp.license, "a pending answer carries no license")
        print("interop pending order=%s count=%d threshold=%d" % (v.order_serial, v.activation_count, v.threshold))
        return
    if resp.order:
        check(args.order_public_key, "--order-public-key for an answer with an order")
        lic = check_chain(pb, opb, resp, args.order_public_key, machine)
    else:
        check(resp.key_id == key_id_of(args.public_key), "key_id names the vendor key")
        check(license_ok(args.public_key, resp, tmp), "openssl verifies the license signature over its tree")
        lic = pb.License.FromString(resp.license)
    check(lic.order_serial == v.order_serial and lic.seat_mode == v.mode, "the license and VolumeStatus agree")
    if args.deactivate:
        deactivate(pb.DeactivateRequest(license_id=lic.license_id, machine_id=machine,
                                        proof=proof(pb, "deactivate", lic.license_id, machine, place_key)),
                   timeout=10)
    print("interop ok order=%s revision=%d mode=%s count=%d threshold=%d seats_used=%d" %
          (lic.order_serial, lic.order_revision, lic.seat_mode, v.activation_count, v.threshold, v.seats_used))


def raw_public(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def proof(pb, op, license_id, machine, private_key, timestamp=None):
    """PlaceProof: Ed25519 over TAG || 0x00 || license_id || machine_id || int64 BE time."""
    if timestamp is None:
        timestamp = int(time.time())
    message = (b"pa-%s-v1\0" % op.encode() + license_id.encode("ascii") + machine +
               struct.pack(">q", timestamp))
    return pb.PlaceProof(place_key=raw_public(private_key), timestamp=timestamp,
                         signature=private_key.sign(message))


COMPONENT_SALT = b"interop-python-vendor"


def machine_values(tag):
    """Made-up hardware of the machine called `tag`: every value differs per tag."""
    h = hashlib.sha256(tag.encode()).hexdigest()
    return {"dmi_uuid": "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]),
            "board_serial": "BS" + h[32:42].upper(), "disk_serial": "WD-" + h[42:54].upper(),
            "mac": ":".join(["3c"] + [h[i:i + 2] for i in range(54, 64, 2)]),
            "machine_id_file": hashlib.md5(tag.encode()).hexdigest()}


def components(pb, values):
    """ActivateRequest.components: HMAC-SHA256(salt, "pa-component-v1" 0x00 name 0x00 value)."""
    return [pb.MachineComponent(name=name, digest=hmac.new(
        COMPONENT_SALT, b"pa-component-v1\0" + name.encode() + b"\0" + value.encode(), hashlib.sha256).digest())
        for name, value in sorted(values.items())]


def rebind(args, pb, activate, tmp):
    """--rebind: a place follows its machine through a new MAC, not to a different machine."""
    def one(values, machine):
        resp = activate(pb.ActivateRequest(product_key=args.key, machine_id=machine, hostname="interop-rebind",
                                           os="Debian GNU/Linux", arch="x86_64", client_version="python-grpcio",
                                           place_key=raw_public(Ed25519PrivateKey.generate()),
                                           components=components(pb, values)), timeout=10)
        check(license_ok(args.public_key, resp, tmp), "openssl verifies the license signature over its tree")
        check(pb.License.FromString(resp.license).machine_id == machine, "the license names the new machine_id")
        return resp
    values = machine_values("rebind-host")
    first = one(values, os.urandom(32))
    check(first.activation_count == 1 and not first.rebound, "the first activation takes a place")
    # A container's next start: new MAC, so a new machine_id; four components match.
    values["mac"] = "3c:00:00:00:00:01"
    moved = one(values, os.urandom(32))
    check(moved.rebound, "a new MAC with four matching components is rebound")
    check(moved.activation_count == 1, "the rebound place is the same place (activation_count 1, got %d)"
          % moved.activation_count)
    # The disk itself in another machine: disk_serial and machine_id_file match, two of five.
    clone = machine_values("other-host")
    clone["disk_serial"], clone["machine_id_file"] = values["disk_serial"], values["machine_id_file"]
    other = one(clone, os.urandom(32))
    check(not other.rebound and other.activation_count == 2, "two shared components take a new place")
    print("interop ok rebind count=%d" % other.activation_count)


def refused(call, request, what):
    """The (status, error-reason) of a call that must fail."""
    try:
        call(request, timeout=10)
    except Exception as e:  # grpc.RpcError; grpc is imported late, in main
        reasons = [v for k, v in (e.trailing_metadata() or ()) if k == "error-reason"]
        return e.code().name, reasons[0] if reasons else ""
    check(False, what + " is refused")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True, help="CA certificate (PEM) of the server's TLS certificate")
    ap.add_argument("--key", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--public-key", required=True)
    ap.add_argument("--group", type=int, required=True)
    ap.add_argument("--serial", type=int, required=True)
    ap.add_argument("--revoked-key", help="a genuine key that has been revoked")
    ap.add_argument("--volume", action="store_true", help="activate a volume key once, verify its chain")
    ap.add_argument("--order-public-key", help="the vendor's order-verification key (PEM), with --volume")
    ap.add_argument("--machine-id", help="64 hex characters (--volume; default random)")
    ap.add_argument("--deactivate", action="store_true", help="--volume: deactivate afterwards")
    ap.add_argument("--rebind", action="store_true",
                    help="the key's group has --machine-match 3: check that a place follows its machine")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["protoc", "-I" + args.protos, "--python_out=" + tmp,
                        "activation/v1/activation.proto", "volume/v1/order.proto"], check=True)
        sys.path.insert(0, tmp)
        import grpc
        from activation.v1 import activation_pb2 as pb
        from volume.v1 import order_pb2 as opb

        with open(args.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(args.server, creds)
        activate = channel.unary_unary("/activation.v1.Activation/Activate",
                                       request_serializer=pb.ActivateRequest.SerializeToString,
                                       response_deserializer=pb.ActivateResponse.FromString)
        renew = channel.unary_unary("/activation.v1.Activation/Renew",
                                    request_serializer=pb.RenewRequest.SerializeToString,
                                    response_deserializer=pb.RenewResponse.FromString)
        deactivate = channel.unary_unary("/activation.v1.Activation/Deactivate",
                                         request_serializer=pb.DeactivateRequest.SerializeToString,
                                         response_deserializer=pb.DeactivateResponse.FromString)
        if args.volume:
            volume(args, pb, opb, activate, deactivate, tmp)
            channel.close()
            return
        if args.rebind:
            rebind(args, pb, activate, tmp)
            channel.close()
            return
        machine = hashlib.sha256(b"interop test machine").digest()
        place_key = Ed25519PrivateKey.generate()
        # Case and hyphens are free on input.
        typed = args.key.lower().replace("-", "")
        resp = activate(pb.ActivateRequest(product_key=typed, machine_id=machine,
                                           hostname="interop-host", os="Debian GNU/Linux",
                                           arch="x86_64", client_version="python-grpcio",
                                           place_key=raw_public(place_key),
                                           components=components(pb, machine_values("interop-host"))),
                        timeout=10)

        check(resp.key_id == key_id_of(args.public_key), "key_id names the vendor key")
        check(len(resp.signature) == 64, "an Ed25519 signature is 64 bytes")
        check(1 <= resp.tree_size <= 256 and resp.tree_index < resp.tree_size, "tree_index and tree_size")
        check(license_ok(args.public_key, resp, tmp), "openssl verifies the license signature over its tree")
        check(not verify_with_openssl(args.public_key, resp.license, resp.signature, tmp),
              "the signature is over the tree, never over the license bytes alone")
        check_tampering_refused(args.public_key, resp, tmp)
        lic = pb.License.FromString(resp.license)
        check(lic.format_version == 1, "format_version 1")
        check(lic.key_group == args.group and lic.key_serial == args.serial, "group and serial")
        check(lic.machine_id == machine, "machine_id bound")
        check(lic.product == "Demo Office" and lic.edition == "Professional", "product, edition")
        check(lic.channel == pb.CHANNEL_RETAIL, "channel")
        check(list(lic.features) == ["editor", "spreadsheet"], "features")
        check(lic.license_id.startswith("%08x%08x" % (args.group, args.serial)), "license_id")
        check(len(lic.license_id) == 32, "license_id length")
        check(lic.signing_key_id == resp.key_id, "signing_key_id")
        check(resp.activation_count == 1, "activation_count")
        check(lic.expires_at == 0 and resp.expires_at == 0, "permanent license")

        # Renew and Deactivate need the place key; the license alone is not enough.
        lid = lic.license_id
        unauth = "UNAUTHENTICATED"
        check(refused(renew, pb.RenewRequest(license_id=lid, machine_id=machine), "Renew without proof")
              == (unauth, "PROOF_INVALID"), "Renew without proof: PROOF_INVALID")
        copied = proof(pb, "renew", lid, machine, Ed25519PrivateKey.generate())
        check(refused(renew, pb.RenewRequest(license_id=lid, machine_id=machine, proof=copied),
                      "Renew with another key") == (unauth, "PROOF_WRONG_KEY"),
              "a copied license file (another key) cannot renew: PROOF_WRONG_KEY")
        tampered = proof(pb, "renew", lid, machine, place_key)
        tampered.signature = bytes([tampered.signature[0] ^ 1]) + tampered.signature[1:]
        check(refused(renew, pb.RenewRequest(license_id=lid, machine_id=machine, proof=tampered),
                      "Renew with a tampered signature") == (unauth, "PROOF_INVALID"),
              "a tampered signature: PROOF_INVALID")
        old = proof(pb, "renew", lid, machine, place_key, int(time.time()) - 3600)
        check(refused(renew, pb.RenewRequest(license_id=lid, machine_id=machine, proof=old),
                      "Renew with an hour-old proof") == (unauth, "PROOF_STALE"),
              "an old proof: PROOF_STALE")
        renewed = renew(pb.RenewRequest(license_id=lid, machine_id=machine,
                                        proof=proof(pb, "renew", lid, machine, place_key)),
                        timeout=10)
        check(license_ok(args.public_key, renewed, tmp), "openssl verifies the renewed license over its tree")
        check_tampering_refused(args.public_key, renewed, tmp)
        check(pb.License.FromString(renewed.license).license_id == lid, "renewal keeps the id")
        check(refused(deactivate, pb.DeactivateRequest(
                  license_id=lid, machine_id=machine, proof=proof(pb, "renew", lid, machine, place_key)),
                      "Deactivate with a Renew proof") == (unauth, "PROOF_INVALID"),
              "a Renew proof does not deactivate")
        bye = pb.DeactivateRequest(license_id=lid, machine_id=machine,
                                   proof=proof(pb, "deactivate", lid, machine, place_key))
        check(deactivate(bye, timeout=10).activation_count == 0, "deactivated with the key")
        check(refused(deactivate, bye, "a replayed Deactivate") == ("NOT_FOUND", ""),
              "a replayed Deactivate finds nothing to free")

        try:
            activate(pb.ActivateRequest(product_key="not a key", machine_id=machine), timeout=10)
            check(False, "a malformed key is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT for a bad key")
            check("product_key" in e.details(), "the message names the field")

        if args.revoked_key:
            try:
                activate(pb.ActivateRequest(product_key=args.revoked_key, machine_id=machine),
                         timeout=10)
                check(False, "a revoked key is refused")
            except grpc.RpcError as e:
                check(e.code() == grpc.StatusCode.FAILED_PRECONDITION,
                      "FAILED_PRECONDITION for a revoked key")
                reasons = [v for k, v in (e.trailing_metadata() or ()) if k == "error-reason"]
                check(reasons == ["KEY_REVOKED"], "error-reason KEY_REVOKED, got %r" % reasons)
        channel.close()
    print("interop ok")


if __name__ == "__main__":
    main()

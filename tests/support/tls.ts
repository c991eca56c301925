// A small private CA and a localhost server certificate it signed (rustls refuses a CA as end
// entity), made with openssl for tests that serve TLS: ca.pem/ca.key and cert.pem/key.pem.
import assert from "node:assert/strict";
import { join } from "node:path";

/** Writes ca.pem, ca.key, cert.pem (CN and SAN localhost) and key.pem into `dir`. */
export async function makePrivateCa(dir: string): Promise<void> {
  const openssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(
    "req",
    "-x509",
    ...ec,
    "-days",
    "1",
    "-subj",
    "/CN=aegis test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  await openssl("req", ...ec, "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr");
  await Deno.writeTextFile(
    join(dir, "ext.cnf"),
    "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
  );
  await openssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
    "-out",
    "cert.pem",
  );
}

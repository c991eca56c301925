import assert from "node:assert/strict";
import { AegisError } from "../../shared/errors.ts";
import { readCaPem, renderInstallScript } from "./install_scripts.ts";

const values = {
  bootstrapUrl: "https://ctl.example.com",
  version: "1.2.3",
  publicKey: "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
  caPem: "-----BEGIN CERTIFICATE-----\nMIIB'x\n-----END CERTIFICATE-----\n",
};

Deno.test("renderInstallScript() fills every placeholder, quoted for its shell", async () => {
  const sh = renderInstallScript("sh", values);
  assert.ok(sh.includes("served_url='https://ctl.example.com'"));
  assert.ok(sh.includes("served_version='1.2.3'"));
  assert.ok(sh.includes("MIIB'\\''x"));
  assert.doesNotMatch(sh, /'__AEGIS_[A-Z_]+__'/);
  const dash = await new Deno.Command("dash", { args: ["-n"], stdin: "piped", stderr: "piped" })
    .spawn();
  const writer = dash.stdin.getWriter();
  await writer.write(new TextEncoder().encode(sh));
  await writer.close();
  assert.equal((await dash.output()).code, 0);

  const ps1 = renderInstallScript("ps1", values);
  assert.ok(ps1.includes("$servedUrl = 'https://ctl.example.com'"));
  assert.ok(ps1.includes("MIIB''x"));
  assert.doesNotMatch(ps1, /'__AEGIS_[A-Z_]+__'/);
});

Deno.test("renderInstallScript() leaves an empty value as its placeholder (read as not provided)", () => {
  const sh = renderInstallScript("sh", { ...values, caPem: "" });
  assert.ok(sh.includes("served_ca='__AEGIS_CA_PEM__'"));
  assert.ok(sh.includes("case $served_ca in __AEGIS_*) served_ca='' ;; esac"));
});

Deno.test("readCaPem() keeps only certificates and refuses anything else", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(
      path,
      "-----BEGIN PRIVATE KEY-----\nMIIkey\n-----END PRIVATE KEY-----\n" +
        "-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----\n",
    );
    assert.equal(
      await readCaPem(path),
      "-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----\n",
    );
    assert.equal(await readCaPem(undefined), "");
    await Deno.writeTextFile(path, "not a certificate");
    await assert.rejects(
      readCaPem(path),
      (e) => e instanceof AegisError && e.code === "CONFIG_INVALID",
    );
    await assert.rejects(readCaPem(`${path}.absent`), AegisError);
  } finally {
    await Deno.remove(path);
  }
});

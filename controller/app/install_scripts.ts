// install.sh and install.ps1 as this controller serves them: the templates (compiled into the
// binary as text imports, so `deno compile` needs no files beside it) with the bootstrap URL, the
// release version, the release public key and a private CA filled in.
import installSh from "../../installers/install.sh" with { type: "text" };
import installPs1 from "../../installers/install.ps1" with { type: "text" };
import { AegisError } from "../../shared/errors.ts";
import { parsePublicKey, publicKeyBase64 } from "../../shared/release/minisign.ts";
import { PUBLIC_KEY_FILE } from "../../shared/release/manifest.ts";
import { readReleaseText, type Release } from "./releases.ts";

export type InstallScript = "sh" | "ps1";

export interface InstallScriptValues {
  bootstrapUrl: string;
  version: string;
  /** The base64 line of release.pub. */
  publicKey: string;
  /** PEM of a private CA, or empty. */
  caPem: string;
}

const TEMPLATES: Record<InstallScript, string> = { sh: installSh, ps1: installPs1 };
const MAX_CA_PEM_BYTES = 64 * 1024;

/** The values a release gives: its version and its own public key, validated. */
export async function installScriptValues(
  release: Release,
  bootstrapUrl: string,
  caPem: string,
): Promise<InstallScriptValues> {
  const keyText = await readReleaseText(release, PUBLIC_KEY_FILE);
  return {
    bootstrapUrl,
    version: release.version,
    publicKey: publicKeyBase64(parsePublicKey(keyText)),
    caPem,
  };
}

export function renderInstallScript(kind: InstallScript, values: InstallScriptValues): string {
  const quote = kind === "sh" ? shellQuote : powershellQuote;
  const fills: Record<string, string> = {
    __AEGIS_BOOTSTRAP_URL__: values.bootstrapUrl,
    __AEGIS_VERSION__: values.version,
    __AEGIS_RELEASE_PUBKEY__: values.publicKey,
    __AEGIS_CA_PEM__: values.caPem.trim(),
  };
  let text = TEMPLATES[kind];
  for (const [name, value] of Object.entries(fills)) {
    const placeholder = `'${name}'`;
    if (text.split(placeholder).length !== 2) {
      throw new AegisError("INTERNAL", `installer template ${kind} must hold ${placeholder} once`);
    }
    // An empty value keeps the placeholder: the script then reads it as "not provided".
    if (value) text = text.replace(placeholder, () => quote(value));
  }
  return text;
}

/** Reads bootstrap.ca_file once at start-up: a PEM bundle of certificates, nothing else. */
export async function readCaPem(path: string | undefined): Promise<string> {
  if (!path) return "";
  const text = await Deno.readTextFile(path).catch((error) => {
    throw new AegisError("CONFIG_INVALID", `cannot read bootstrap.ca_file ${path}`, {
      cause: error,
    });
  });
  const blocks = text.match(
    /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g,
  );
  if (text.length > MAX_CA_PEM_BYTES || !blocks) {
    throw new AegisError(
      "CONFIG_INVALID",
      `bootstrap.ca_file ${path} is not a PEM certificate bundle (at most ${MAX_CA_PEM_BYTES} bytes)`,
    );
  }
  // Only the certificates: a key that slipped into the file is never served.
  return blocks.join("\n") + "\n";
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function powershellQuote(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

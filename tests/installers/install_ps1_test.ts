// install.ps1 has no PowerShell here to run it, so it is parsed with a real PowerShell grammar
// (tree-sitter-powershell, through web-tree-sitter's WebAssembly runtime) and its steps are
// checked on the syntax tree: the template as it is in the tree and as the controller renders it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { Language, type Node, Parser } from "web-tree-sitter";
import { ROOT } from "../support/processes.ts";
import { renderInstallScript } from "../../controller/app/install_scripts.ts";

const GRAMMAR = join(ROOT, "node_modules", "tree-sitter-powershell", "tree-sitter-powershell.wasm");
const TEMPLATE = join(ROOT, "installers", "install.ps1");

async function powershell(): Promise<Parser> {
  await Parser.init();
  const parser = new Parser();
  parser.setLanguage(await Language.load(GRAMMAR));
  return parser;
}

function problems(node: Node): string[] {
  const found: string[] = [];
  const walk = (n: Node) => {
    if (n.isError || n.isMissing) {
      found.push(
        `${n.type} at ${n.startPosition.row + 1}:${n.startPosition.column}: ${n.text.slice(0, 60)}`,
      );
    }
    for (const child of n.children) if (child) walk(child);
  };
  walk(node);
  return found;
}

function textsOf(node: Node, type: string): string[] {
  return node.descendantsOfType(type).map((n) => n!.text);
}

const rendered = () =>
  renderInstallScript("ps1", {
    bootstrapUrl: "https://ctl.example.com:8443",
    version: "1.2.3",
    publicKey: "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3",
    caPem: "-----BEGIN CERTIFICATE-----\nMIIBtest'quote\n-----END CERTIFICATE-----\n",
  });

Deno.test("install.ps1: the grammar finds no syntax error, in the template or rendered", async () => {
  const parser = await powershell();
  // The grammar does report errors: a sanity check on a broken script.
  assert.ok(problems(parser.parse("function F { if ($x { }")!.rootNode).length > 0);
  for (const text of [await Deno.readTextFile(TEMPLATE), rendered()]) {
    const tree = parser.parse(text)!;
    assert.deepEqual(problems(tree.rootNode), []);
    assert.equal(tree.rootNode.hasError, false);
  }
});

Deno.test("install.ps1: the rendered script carries the URL, version, key and CA", async () => {
  const tree = (await powershell()).parse(rendered())!;
  const strings = textsOf(tree.rootNode, "verbatim_string_characters");
  assert.ok(strings.includes("'https://ctl.example.com:8443'"));
  assert.ok(strings.includes("'1.2.3'"));
  assert.ok(strings.includes("'RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3'"));
  // A quote inside the value is doubled, so it stays one string.
  assert.ok(strings.some((s) => s.includes("MIIBtest''quote")));
});

Deno.test("install.ps1: TLS 1.2, Get-FileHash, per-user install and PATH, -Token, one function", async () => {
  const text = await Deno.readTextFile(TEMPLATE);
  const root = (await powershell()).parse(text)!.rootNode;
  const commands = new Set(textsOf(root, "command_name"));
  const functions = textsOf(root, "function_name");
  for (const name of ["Invoke-WebRequest", "Get-FileHash", "Move-Item", "ConvertFrom-Json"]) {
    assert.ok(commands.has(name), `${name} is not called`);
  }
  assert.ok(functions.includes("Install-AegisEdge"));
  // TLS 1.2 forced before any download.
  assert.match(
    text,
    /SecurityProtocol = \[Net\.ServicePointManager\]::SecurityProtocol -bor \[Net\.SecurityProtocolType\]::Tls12/,
  );
  assert.ok(text.indexOf("Tls12") < text.indexOf("Invoke-WebRequest"));
  // SHA-256 compared with the manifest's value.
  assert.match(text, /Get-FileHash -Algorithm SHA256/);
  assert.match(text, /\$actual -ne \$artifact\.sha256/);
  // Per-user install dir and user PATH.
  assert.match(text, /Join-Path \$env:LOCALAPPDATA 'Programs\\aegis'/);
  assert.match(text, /SetEnvironmentVariable\('Path', .*'User'\)/);
  // -Token is a script parameter and reaches enroll on standard input.
  const params = textsOf(root.descendantsOfType("param_block")[0]!, "variable");
  assert.ok(params.includes("$Token"));
  assert.match(text, /'enroll', '--token-file', '-'/);
  // The signature check uses minisign.exe and says so loudly without it.
  assert.match(text, /Get-Command minisign\.exe/);
  assert.match(text, /Write-Warning 'THE MANIFEST SIGNATURE IS NOT CHECKED/);
  // The last statement is the one call: a truncated download defines functions, runs nothing.
  const body = root.children.find((n) => n?.type === "statement_list")!;
  const statements = body.namedChildren.filter((n) => n && n.type !== "comment");
  assert.match(statements.at(-1)!.text, /^Install-AegisEdge /);
});

import assert from "node:assert/strict";
import { installCommands } from "./install_commands.ts";

const TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ4In0.c2ln-_";

Deno.test("installCommands() fetches the install scripts from the bootstrap URL with the token", () => {
  const commands = installCommands("https://edge.example.com:8443", TOKEN);
  assert.equal(
    commands.linux,
    `curl -fsSL 'https://edge.example.com:8443/install.sh' | AEGIS_TOKEN='${TOKEN}' sh`,
  );
  assert.equal(commands.macos, commands.linux);
  assert.equal(
    commands.windows,
    `& ([scriptblock]::Create((iwr -useb 'https://edge.example.com:8443/install.ps1'))) -Token '${TOKEN}'`,
  );
});

Deno.test("installCommands() refuses what it could not quote safely", () => {
  assert.throws(() => installCommands("https://x.example/'; rm -rf ~", TOKEN));
  assert.throws(() => installCommands("https://x.example", "a'b.c.d"));
});

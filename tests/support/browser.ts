// A real browser for the console's end-to-end tests: Debian's chromium driven by playwright-core.
// AEGIS_CHROMIUM names another binary; without one the tests that need it are skipped, named.
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = Deno.env.get("AEGIS_CHROMIUM") ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  try {
    return Deno.statSync(CHROMIUM).isFile ? undefined : `${CHROMIUM} is not a file`;
  } catch {
    return `no chromium at ${CHROMIUM} (apt install chromium, or set AEGIS_CHROMIUM)`;
  }
}

export async function launchBrowser(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where chromium refuses its sandbox.
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox"],
  });
}

/** Every console error and CSP violation a page reports, so a test can assert there were none. */
export function collectPageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return problems;
}

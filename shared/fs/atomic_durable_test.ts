import assert from "node:assert/strict";

// Directory fsyncs leave no trace in the file system, so these watch the system calls (strace,
// where installed): after the rename or unlink, the directory is opened and fsync'ed.
const STRACE = ["/usr/bin/strace", "/bin/strace"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

async function syscallsOf(dir: string, code: string): Promise<string[]> {
  const script = `${dir}/probe.ts`;
  const module = JSON.stringify(new URL("./atomic.ts", import.meta.url).href);
  await Deno.writeTextFile(script, `import * as atomic from ${module};\n${code}`);
  const log = `${dir}/strace.log`;
  const out = await new Deno.Command(STRACE!, {
    args: [
      ...["-f", "-e", "trace=openat,rename,renameat,renameat2,unlink,unlinkat,fsync,fcntl"],
      ...["-o", log, Deno.execPath(), "run", "-A", "--quiet", "--no-check", script],
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return joinResumed((await Deno.readTextFile(log)).split("\n"));
}

/** strace splits a call another thread interrupts; put each back on one line, where it began. */
function joinResumed(lines: string[]): string[] {
  const joined: string[] = [];
  const open = new Map<string, number>();
  for (const line of lines) {
    const pid = line.split(" ", 1)[0];
    const resumed = line.match(/<\.\.\. \w+ resumed>(.*)$/);
    if (resumed && open.has(pid)) {
      joined[open.get(pid)!] += resumed[1];
      open.delete(pid);
      continue;
    }
    if (line.endsWith("<unfinished ...>")) {
      open.set(pid, joined.length);
      joined.push(line.replace(" <unfinished ...>", ""));
      continue;
    }
    joined.push(line);
  }
  return joined;
}

/** True when, after line `from`, `dir` is opened and that descriptor (or a dup) is fsync'ed. */
function dirSyncedAfter(lines: string[], from: number, dir: string): boolean {
  const escaped = dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (let i = from + 1; i < lines.length; i++) {
    const opened = lines[i].match(
      new RegExp(`openat\\(AT_FDCWD, "${escaped}", [^)]*\\)\\s*= (\\d+)`),
    );
    if (!opened) continue;
    const fds = new Set([opened[1]]);
    for (const line of lines.slice(i + 1)) {
      const dup = line.match(/fcntl\((\d+), F_DUPFD(?:_CLOEXEC)?, \d+\)\s*= (\d+)/);
      if (dup && fds.has(dup[1])) fds.add(dup[2]);
      const synced = line.match(/fsync\((\d+)\)/);
      if (synced && fds.has(synced[1])) return true;
    }
  }
  return false;
}

Deno.test({
  name: "writeFileAtomic() fsyncs the directory after the rename",
  ignore: !STRACE,
  async fn() {
    const dir = await Deno.makeTempDir();
    const target = `${dir}/node.key`;
    const lines = await syscallsOf(
      dir,
      `await atomic.writeFileAtomic(${JSON.stringify(target)}, "k");\n`,
    );
    const renamed = lines.findIndex((line) => /rename/.test(line) && line.includes(`"${target}"`));
    assert.ok(renamed >= 0, "renamed into place");
    assert.ok(dirSyncedAfter(lines, renamed, dir), "the directory is fsync'ed after it");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "removeFileDurable() fsyncs the directory after the unlink",
  ignore: !STRACE,
  async fn() {
    const dir = await Deno.makeTempDir();
    const target = `${dir}/node.key.new`;
    await Deno.writeTextFile(target, "k");
    const lines = await syscallsOf(
      dir,
      `console.log(await atomic.removeFileDurable(${JSON.stringify(target)}));\n`,
    );
    const unlinked = lines.findIndex((line) => /unlink/.test(line) && line.includes(`"${target}"`));
    assert.ok(unlinked >= 0, "unlinked");
    assert.ok(dirSyncedAfter(lines, unlinked, dir), "the directory is fsync'ed after it");
    await Deno.remove(dir, { recursive: true });
  },
});

// A minimal service manager for the self-update tests, standing in for systemd's Restart=always
// (with RestartPreventExitStatus=77) where no user bus exists: it runs the command, and when the
// command exits starts it again after a short pause, resolving the path anew each time, as a
// service manager does with current/aegis after a switch. SIGTERM stops it and its child.
//   deno run -A supervisor.ts <program> [args…]
const [program, ...args] = Deno.args;
const RESTART_DELAY_MS = 300;
let stopping = false;
let child: Deno.ChildProcess | undefined;

Deno.addSignalListener("SIGTERM", () => {
  stopping = true;
  try {
    child?.kill("SIGTERM");
  } catch { /* exited */ }
});

while (!stopping) {
  child = new Deno.Command(program, { args, stdin: "null", stdout: "inherit", stderr: "inherit" })
    .spawn();
  console.error(`supervisor: started pid ${child.pid}`);
  const status = await child.status;
  console.error(`supervisor: pid ${child.pid} exited ${status.code}`);
  if (status.code === 77) Deno.exit(77);
  if (!stopping) await new Promise((resolve) => setTimeout(resolve, RESTART_DELAY_MS));
}
Deno.exit(0);

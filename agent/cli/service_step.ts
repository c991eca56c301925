// Enrollment's service step, on top of the same service module `aegis edge service` uses.
import {
  installService,
  realRunner,
  type ServiceContext,
  type ServiceOs,
  serviceStatus,
} from "../service/mod.ts";
import { selfCommand } from "../self.ts";
import type { ServiceStep, Step } from "../enroll/apply.ts";

export function serviceContext(
  home: string,
  env: Record<string, string | undefined>,
): ServiceContext {
  return { home, os: Deno.build.os as ServiceOs, command: selfCommand(), run: realRunner, env };
}

export async function probeService(ctx: ServiceContext) {
  const status = await serviceStatus(ctx);
  return { path: status.path, present: status.installed, unitName: status.path ?? "aegis-edge" };
}

export function serviceStep(ctx: ServiceContext): ServiceStep {
  return {
    async install() {
      const report = await installService(ctx, { start: true, replace: false });
      const steps: Step[] = [];
      const target = report.path ?? report.unitName;
      if (report.action === "present") steps.push({ verb: "Kept", path: target });
      else steps.push({ verb: "Wrote", path: target });
      if (report.started) steps.push({ verb: "Started", path: report.unitName });
      const advice: string[] = [];
      if (!report.reachable) {
        advice.push(
          `! ${report.manager} is not reachable from here, so the service was not started. Run:`,
        );
        advice.push(...report.instructions.map((line) => `    ${line}`));
      } else if (report.instructions.length > 0) {
        advice.push(
          `! ${report.manager} needs a hand:`,
          ...report.instructions.map((line) => `    ${line}`),
        );
      } else if (report.action === "present") {
        advice.push(
          "The service was already installed; `aegis edge service reinstall` replaces it.",
        );
      }
      return { steps, advice, started: report.started };
    },
  };
}

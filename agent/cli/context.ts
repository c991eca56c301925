// What every subcommand's register function gets: where to write, and how to report its exit.
import { Option } from "@commander-js/extra-typings";
import type { Io } from "../../shared/cli/io.ts";

export interface CliContext {
  io: Io;
  setExit(code: number): void;
}

export const outputOption = () =>
  new Option("--output <format>", "output format").choices(["text", "json"]).default("text");

export const caFileOption = () =>
  new Option("--ca-file <file>", "extra CA certificate(s) to trust for the controller");

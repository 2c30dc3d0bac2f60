/*
 * Colour for terminals: only when the stream is a TTY and NO_COLOR is not set
 * (no-color.org), so pipes, files and CI logs get plain text.
 */
import { loadClientEnvironment } from "../config.js";

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const plain = (text: string) => text;
const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

export const PLAIN: Palette = { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
const COLOURED: Palette = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

export function paletteFor(stream: { isTTY?: boolean }): Palette {
  return stream.isTTY === true && !loadClientEnvironment({}).noColor ? COLOURED : PLAIN;
}

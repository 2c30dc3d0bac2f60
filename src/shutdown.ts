/*
 * Shutdown as a stack of releasers: whatever was started last is stopped first, and
 * one failing releaser does not keep the others from running.
 */
export type Releaser = () => Promise<void> | void;

export class ReleaserStack {
  private readonly releasers: Array<{ name: string; release: Releaser }> = [];

  push(name: string, release: Releaser): void {
    this.releasers.push({ name, release });
  }

  async releaseAll(onError: (name: string, error: unknown) => void): Promise<void> {
    while (this.releasers.length > 0) {
      const { name, release } = this.releasers.pop()!;
      try {
        await release();
      } catch (error) {
        onError(name, error);
      }
    }
  }
}

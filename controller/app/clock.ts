/** The controller's notion of now; injected so tests can move time. */
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
export const seconds = (date: Date): number => Math.floor(date.getTime() / 1000);

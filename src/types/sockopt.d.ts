// npm `sockopt` ships no types. What src/dhcp/bind-device.ts uses of it: integer socket options
// on a socket whose handle carries a file descriptor.
declare module 'sockopt' {
  export function setsockopt(socket: { _handle: { fd: number } }, level: number, name: number, value: number): void;
  export function getsockopt(socket: { _handle: { fd: number } }, level: number, name: number): number;
}

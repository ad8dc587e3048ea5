// The PKI material the running suite uses, whether generated (lab) or supplied by the operator.
export interface PemKeyPair {
  /** PEM certificate (leaf first, then any chain) */
  certPem: string;
  /** PEM PKCS#8 private key; never logged */
  keyPem: string;
}

export interface SuitePki {
  /** directory holding the lab PKI (<dataDir>/pki) */
  dir: string;
  /** TLS server identity for the HTTPS listeners (bootstrap, images) */
  tls: PemKeyPair;
  /** lab root CA certificate (PEM): what clients trust for the TLS listeners */
  rootCaPem: string;
  /** owner certificate + key that sign conveyed information; chain in certPem after the leaf */
  owner: PemKeyPair;
  /** MASA (manufacturer authorized signing authority) CA that signs lab vouchers */
  masa: PemKeyPair;
  /** issues lab IDevIDs */
  idevidCa: PemKeyPair;
  /** PEM bundle of trust anchors (and intermediates) for device identity certificates */
  deviceTrustPem: string;
  /** directory of vendor-issued vouchers (<serial>.vcj), or '' */
  vouchersDir: string;
}

/// The TLS 1.2 cipher suites a listener may offer, by their OpenSSL names (as nginx's
/// `ssl_ciphers` and Envoy's `cipher_suites` write them). TLS 1.3 suites are not listed: the
/// TLS library always offers its three (AES-GCM and ChaCha20-Poly1305), which are all AEAD.
public enum TLSCipherSuites {
    /// The default, in server preference order: forward secrecy (ECDHE) and AEAD only, as
    /// Mozilla's "intermediate" profile has them. No CBC suite, so no SHA-1 MAC and no
    /// Lucky13-style padding oracles. Which half applies depends on the certificate's key
    /// (ECDSA or RSA).
    public static let defaultOrder = [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]

    /// Every suite `tls.cipherSuites` accepts: the TLS 1.2 suites of NIOSSL's BoringSSL other
    /// than the pre-shared-key ones (Portico has no PSK) and 3DES (Sweet32). Kept exact,
    /// because NIOSSL stops the process when BoringSSL refuses a cipher string.
    public static let supported = defaultOrder + [
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA",
        "ECDHE-RSA-AES256-SHA",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-SHA",
        "AES256-SHA",
    ]

    /// TLS 1.3 suites by their IANA names, which BoringSSL does not let a server choose.
    public static let tls13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
}

#ifndef C_PORTICO_TLS_H
#define C_PORTICO_TLS_H

#include <stdint.h>

/// Makes a server context choose TLS 1.2 cipher suites in its own order rather than the
/// client's (SSL_OP_CIPHER_SERVER_PREFERENCE), which NIOSSL's TLSConfiguration cannot express.
///
/// `ssl_ctx` is the `SSL_CTX *` of an `NIOSSLContext`, before any connection uses it.
/// Returns the context's options afterwards, so the caller can check the bit is set.
uint32_t portico_ssl_ctx_prefer_server_ciphers(void *ssl_ctx);

/// The bit `portico_ssl_ctx_prefer_server_ciphers` sets (BoringSSL's value).
#define PORTICO_SSL_OP_CIPHER_SERVER_PREFERENCE 0x00400000u

#endif

/// The annotated example config from the design brief, shared by the loader and JSON tests.
enum ExampleConfig {
    static let file = "config/gateway.yaml"

    static let yaml = """
    listeners:
      - name: public
        address: 127.0.0.1:8080
      - name: public-tls
        address: 127.0.0.1:8443
        tls:
          certificate: config/certs/gateway.pem
          key: config/certs/gateway-key.pem
    admin:
      address: 127.0.0.1:9901
    limits:                              # all optional
      maxRequestHeaders: 60KiB
      maxRequestBody: 10MiB
      idleTimeout: 60s
      drainTimeout: 30s
    accessLog: { format: json }          # json | off
    services:
      legacy:
        endpoints: [127.0.0.1:9001, 127.0.0.1:9002]
        loadBalancer: round_robin        # round_robin | least_request | random
        connectTimeout: 5s               # optional
        maxConnectionsPerEndpoint: 1024  # optional
      new:
        endpoints: [127.0.0.1:9101]
    routes:
      - match: { host: api.example.com, prefix: /v1/ }
        service: legacy
      - name: v1                         # optional; default "route-N" with N the 0-based index
        match: { prefix: /v1/ }
        service: legacy
        timeout: 10s
      - match: { prefix: /beta/, headers: { x-canary: "true" } }
        service: new
        rewrite: { prefix: / }           # also rewrite.host
      - match: { path: /ping }
        directResponse: { status: 200, body: "pong" }   # also contentType
      - match: { prefix: /old/, methods: [GET, HEAD] }
        redirect: { host: new.example.com, prefix: /new/, status: 308 }  # keys: scheme host port path prefix status stripQuery
      - match: { regex: "/items/[0-9]+" , headers: { x-debug: { present: true } } }
        directResponse: { status: 204 }
      - match: { prefix: / }
        split:
          - { service: new, weight: 90 }
          - { service: legacy, weight: 10 }

    """
}

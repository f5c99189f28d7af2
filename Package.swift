// swift-tools-version:6.0
import PackageDescription

// Layers as modules: PorticoConfig and PorticoRouting are pure logic (no sockets, no clock),
// PorticoCore holds the pure state machines, PorticoProxy is the SwiftNIO shell around them,
// PorticoFunctions plugs functions into the proxy's backend interface, and `portico` is the
// command line that wires the two together. The proxy does not know functions exist: it
// defines `Backend` (a service or a function worker behind one lease) and `LocalResponder`
// (exec mode), and PorticoFunctions implements them.
// The request path's modules skip the run-time exclusivity checks in release builds: on a
// proxied request they were about 5 % of the CPU (`swift_beginAccess`, its thread-local access
// set), mostly on the handlers' stored properties. The compile-time checks stay, and debug
// builds (what `swift test` runs, the whole suite) keep the run-time ones, so an overlapping
// access still fails a test rather than slipping into a release.
let requestPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Portico",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "portico", targets: ["portico"]),
        .executable(name: "portico-supervise", targets: ["portico-supervise"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "PorticoConfig",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "PorticoRouting",
            dependencies: ["PorticoConfig"]
        ),
        .target(
            name: "PorticoCore",
            swiftSettings: requestPathSettings
        ),
        // Who is asking and may they: JWT verification (jwt-kit), peer identities from client
        // certificates, authorization rules. Pure: keys and clocks come in from the shell.
        .target(
            name: "PorticoAuth",
            dependencies: [
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // fork/exec with PR_SET_PDEATHSIG and a process group: what happens between fork and
        // exec must be async-signal-safe C, which Foundation's Process cannot offer.
        .target(
            name: "CPorticoSpawn"
        ),
        // The per-worker supervisor and the spawner that forks it (see Sources/CPorticoSpawn),
        // installed beside `portico`; without it the gateway runs its own binary in their place.
        .executableTarget(
            name: "portico-supervise",
            dependencies: ["CPorticoSpawn"],
            // Plain C, but linked by the Swift driver, which names the Swift runtime and libstdc++
            // as needed libraries: loading them took 1.7 ms of every cold start. A static
            // executable loads nothing.
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        // The I/O shell of functions: processes, readiness, the scaler's actions, the folder
        // watcher. Its revisions are the proxy's backends (http mode) and local responders (exec).
        .target(
            name: "PorticoFunctions",
            dependencies: [
                "PorticoConfig", "PorticoCore", "PorticoHTTP1", "PorticoProxy", "CPorticoSpawn",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The Lambda Runtime API server (LambdaRuntimeServer): not the request path.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The Python launcher travels inside the binary: a container image or a copied
            // binary has no repository beside it.
            resources: [.embedInCode("Launcher/python_launcher.py")]
        ),
        // One BoringSSL option NIOSSL does not expose: the server's cipher order (ListenerTLS).
        .target(
            name: "CPorticoTLS"
        ),
        .target(
            name: "PorticoProxy",
            dependencies: [
                "PorticoConfig", "PorticoRouting", "PorticoCore", "PorticoAuth", "PorticoHTTP1", "CPorticoTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The admin dashboard's page travels inside the binary, like the Python launcher:
            // plain files, no CDN and no build step.
            resources: [
                .embedInCode("Dashboard/index.html"),
                .embedInCode("Dashboard/dashboard.css"),
                .embedInCode("Dashboard/dashboard.js"),
            ],
            swiftSettings: requestPathSettings
        ),
        // Portico's own HTTP/1 codec: parses in place, keeps offsets into the received bytes and
        // builds no String unless asked. Pure: no I/O, no clock, no channel types.
        .target(
            name: "PorticoHTTP1",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.swiftLanguageMode(.v6)] + requestPathSettings
        ),
        .executableTarget(
            name: "portico",
            dependencies: [
                "PorticoConfig", "PorticoRouting", "PorticoCore", "PorticoProxy", "PorticoFunctions", "PorticoAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // A measuring tool for the benchmark, not part of Portico: what SwiftNIO's own codecs cost
        // per request on the same core (Benchmarks/README.md, "The floor under the design").
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Benchmarks/tools/nio-floor"
        ),
        .testTarget(name: "PorticoConfigTests", dependencies: ["PorticoConfig"]),
        .testTarget(name: "PorticoRoutingTests", dependencies: ["PorticoRouting", "PorticoConfig"]),
        .testTarget(name: "PorticoCoreTests", dependencies: ["PorticoCore"]),
        // NIOHTTP1 (llhttp) is a test-only dependency: the differential oracle of the codec.
        .testTarget(
            name: "PorticoHTTP1Tests",
            dependencies: [
                "PorticoHTTP1", "CAllocationCounter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        // The libFuzzer target of the HTTP/1 codec; HTTP1FuzzEntry.swift says how CI builds and runs it.
        .executableTarget(
            name: "PorticoHTTP1Fuzz",
            dependencies: ["PorticoHTTP1", .product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/PorticoHTTP1Fuzz",
            exclude: ["Corpus", "http1.dict"]
        ),
        // Keys, key sets and tokens made by tests, for the JWT unit and end-to-end tests.
        .target(
            name: "JWTTestSupport",
            dependencies: [
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/JWTTestSupport"
        ),
        .testTarget(
            name: "PorticoAuthTests",
            dependencies: [
                "PorticoAuth", "JWTTestSupport",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(
            name: "PorticoFunctionsTests",
            dependencies: [
                "PorticoFunctions", "PorticoConfig", "PorticoCore", "PorticoProxy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Counts heap allocations for the hot-path allocation test (see ProxyAllocationTests).
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        .testTarget(
            name: "PorticoProxyTests",
            dependencies: [
                "PorticoProxy", "PorticoConfig", "PorticoRouting", "PorticoCore", "PorticoHTTP1", "CAllocationCounter", "JWTTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ]
        ),
        .testTarget(
            name: "PorticoEndToEndTests",
            dependencies: [
                "PorticoProxy", "PorticoConfig", "JWTTestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
    ]
)

// swift-tools-version:5.9
// A measuring tool, not part of Portico: see Benchmarks/README.md, "The floor under the design".
import PackageDescription

let package = Package(
    name: "nio-forwarder",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(name: "nio-forwarder", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
    ]
)

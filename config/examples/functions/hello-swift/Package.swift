// swift-tools-version:6.0
import PackageDescription

// A Portico function in Swift with no dependencies, so its build at deploy time is short.
let package = Package(
    name: "hello-swift",
    targets: [.executableTarget(name: "hello-swift")]
)

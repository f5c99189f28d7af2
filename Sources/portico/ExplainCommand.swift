import ArgumentParser
import Foundation
import PorticoConfig
import PorticoFunctions
import PorticoProxy

/// `portico explain`: what the gateway would do with one request, from the config file, without
/// sending anything. The running gateway answers the same from its admin API (`POST /explain`).
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain what the gateway would do with a request: routes tried, layers, backend. Sends nothing.",
        discussion: """
            Examples:
              portico explain GET http://api.example.com/v1/users -H 'Authorization: Bearer eyJ...'
              portico explain POST /orders --json
            A bare path is sent with Host: localhost unless -H 'Host: ...' is given. Exit status 2: \
            the request cannot be explained as given (a bad URL, header or certificate).
            """)

    @OptionGroup var options: ConfigOption
    @OptionGroup var functionsOption: FunctionsOption

    @Argument(help: "The request method, such as GET.")
    var method: String

    @Argument(help: "http://host[:port]/path?query, https://..., or /path?query.")
    var url: String

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(name: .customLong("client-cert"), help: "A client certificate (PEM), as mTLS would present it.")
    var clientCertificate: String?

    @Option(name: .long, help: "The listener the request arrives on (default: the one the URL's port or scheme names).")
    var listener: String?

    @Option(name: .customLong("client-address"), help: "The client's address, as rate limits key on it.")
    var clientAddress: String?

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        var pem: String?
        if let path = clientCertificate {
            guard let data = FileManager.default.contents(atPath: path) else {
                fail("cannot read the client certificate \(path)")
            }
            pem = String(decoding: data, as: UTF8.self)
        }
        var request: ExplainRequest
        do {
            request = try ExplainRequest(method: method, url: url, headers: headers, certificatePEM: pem, listener: listener)
        } catch {
            fail("\(error)")
        }
        if let clientAddress { request.clientAddress = clientAddress }

        let explainer: RequestExplainer
        do {
            let config = try ConfigLoader.load(file: options.config)
            let manifests = FunctionDirectory.scan(functionsOption.functions).manifests
            explainer = try await RequestExplainer.offline(
                config: config, functionRoutes: manifests.routeConfigs(after: config.routes.count),
                functionsOnDisk: Set(manifests.map(\.name)))
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode.failure
        }
        let explanation: Explanation
        do {
            explanation = try explainer.explain(request)
        } catch {
            fail("\(error)")
        }
        if json {
            FileHandle.standardOutput.write(explanation.encodedJSON())
        } else {
            FileHandle.standardOutput.write(Data(explanation.renderText().utf8))
        }
    }

    /// Input that cannot be explained: exit status 2, as for a usage error.
    private func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("portico explain: \(message)\n".utf8))
        Foundation.exit(2)
    }
}

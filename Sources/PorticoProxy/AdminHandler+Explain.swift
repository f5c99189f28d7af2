import Foundation
import NIOCore
import PorticoHTTP1

/// Admin `POST /explain`: what the running gateway would do with a request, with its keys,
/// its health and ejection state and its functions' workers. The body:
///
///     {"method": "GET", "url": "http://api.example.com/v1/x",
///      "headers": {"authorization": "Bearer ..."},   // or ["Authorization: Bearer ..."]
///      "clientCertificate": "-----BEGIN CERTIFICATE-----...",   // optional
///      "listener": "public", "clientAddress": "10.0.0.7"}       // optional
///
/// The answer is the JSON of `portico explain --json`; bad input gets 400 with `{"error": ...}`.
extension AdminHandler {
    struct ExplainBody: Decodable {
        var method: String
        var url: String
        var headers: [String]
        var clientCertificate: String?
        var listener: String?
        var clientAddress: String?

        enum CodingKeys: String, CodingKey {
            case method, url, headers, clientCertificate, listener, clientAddress
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            method = try container.decode(String.self, forKey: .method)
            url = try container.decode(String.self, forKey: .url)
            clientCertificate = try container.decodeIfPresent(String.self, forKey: .clientCertificate)
            listener = try container.decodeIfPresent(String.self, forKey: .listener)
            clientAddress = try container.decodeIfPresent(String.self, forKey: .clientAddress)
            if try !container.contains(.headers) || container.decodeNil(forKey: .headers) {
                headers = []
            } else if let lines = try? container.decode([String].self, forKey: .headers) {
                headers = lines
            } else if let object = try? container.decode([String: String].self, forKey: .headers) {
                headers = object.keys.sorted().map { "\($0): \(object[$0]!)" }
            } else {
                throw DecodingError.dataCorruptedError(
                    forKey: .headers, in: container,
                    debugDescription: "headers is an object of names to values, or a list of \"Name: value\"")
            }
        }
    }

    func explain(context: ChannelHandlerContext, head: RequestHead, body: ByteBuffer?) {
        let input: ExplainRequest
        do {
            let data = body.map { Data($0.readableBytesView) } ?? Data()
            let decoded: ExplainBody
            do {
                decoded = try JSONDecoder().decode(ExplainBody.self, from: data)
            } catch {
                throw ExplainInputError("the body is not {\"method\": ..., \"url\": ..., \"headers\": ...}: \(Self.describe(error))")
            }
            var request = try ExplainRequest(method: decoded.method, url: decoded.url, headers: decoded.headers,
                                             certificatePEM: decoded.clientCertificate, listener: decoded.listener)
            if let address = decoded.clientAddress { request.clientAddress = address }
            input = request
        } catch let error as ExplainInputError {
            return sendExplainError(context, head, error)
        } catch {
            return sendExplainError(context, head, ExplainInputError("\(error)"))
        }

        let explainer = RequestExplainer(gateway: gateway)
        var explanation: Explanation
        do {
            explanation = try explainer.explain(input)
        } catch {
            return sendExplainError(context, head, ExplainInputError("\(error)"))
        }
        // Only a function's home loop knows its workers: ask those the request would reach.
        let functions = explainer.functionNames(in: explanation).compactMap { explainer.snapshot.functions[$0] }
        let statuses: [EventLoopFuture<FunctionStatus>] = functions.map { $0.status() }
        EventLoopFuture<FunctionStatus>.whenAllComplete(statuses, on: context.eventLoop).assumeIsolated().whenSuccess { [self] results in
            for case .success(let status) in results { RequestExplainer.attach(status, to: &explanation) }
            let data = explanation.encodedJSON()
            var buffer = context.channel.allocator.buffer(capacity: data.count)
            buffer.writeBytes(data)
            send(context, head, .ok, buffer: buffer, contentType: "application/json")
        }
    }

    private func sendExplainError(_ context: ChannelHandlerContext, _ head: RequestHead, _ error: ExplainInputError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(["error": error.message])) ?? Data()
        data.append(UInt8(ascii: "\n"))
        var buffer = context.channel.allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        send(context, head, .badRequest, buffer: buffer, contentType: "application/json")
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "'\(path)': ") + context.debugDescription
        case DecodingError.valueNotFound(_, let context):
            return "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' is null"
        default: return "\(error)"
        }
    }
}

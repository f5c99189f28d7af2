import PorticoRouting
import XCTest

final class GRPCContentTypeTests: XCTestCase {
    func testTheGRPCMediaTypes() {
        XCTAssertEqual(GRPCContentType("application/grpc"), .grpc)
        XCTAssertEqual(GRPCContentType("application/grpc+proto"), .grpc)
        XCTAssertEqual(GRPCContentType("Application/GRPC; charset=utf-8"), .grpc)
        XCTAssertEqual(GRPCContentType("application/grpc-web"), .grpcWeb)
        XCTAssertEqual(GRPCContentType("application/grpc-web+proto"), .grpcWeb)
        XCTAssertEqual(GRPCContentType("application/grpc-web-text"), .grpcWebText)
        XCTAssertEqual(GRPCContentType("application/grpc-web-text+proto"), .grpcWebText)
        XCTAssertNil(GRPCContentType("application/grpcx"))
        XCTAssertNil(GRPCContentType("application/grpc-webby"))
        XCTAssertNil(GRPCContentType("application/json"))
        XCTAssertNil(GRPCContentType("application/grp"))
    }
}

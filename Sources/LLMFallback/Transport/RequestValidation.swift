import NIOHTTP1

/// What ``NIOHTTPClientTransport`` checks before it writes a byte of a request, as AsyncHTTPClient does: header
/// names are tokens, header values hold no control character but tab (CR, LF and NUL above all: request
/// splitting), and the method and the target hold no whitespace or control character.
///
/// A failure is a ``ProviderError`` of kind ``ProviderError/Kind/misconfigured`` that names the header but never
/// quotes its value (a value may be a key).
enum RequestValidation {
    /// Checks `head`; returns whether it asks for `Connection: close`.
    static func validate(_ head: HTTPRequestHead) throws -> Bool {
        if case .RAW(let method) = head.method {
            guard !method.isEmpty, method.utf8.allSatisfy(isTokenByte) else {
                throw ProviderError(.misconfigured, message: "invalid request: the HTTP method is not a token")
            }
        }
        guard head.uri.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else {
            throw ProviderError(.misconfigured, message: "invalid URL: the path or query holds whitespace or a control character")
        }
        var closeAfter = false
        for (name, value) in head.headers {
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                throw ProviderError(.misconfigured, message: "invalid header: a header name holds a character a name may not hold")
            }
            guard value.utf8.allSatisfy(isFieldValueByte) else {
                throw ProviderError(
                    .misconfigured,
                    message: "invalid header: the value of \(name) holds a control character (CR, LF, NUL or another)"
                )
            }
            if !closeAfter, isConnection(name) {
                closeAfter = value.lowercased().split(separator: ",").contains { $0.trimmingSpaces == "close" }
            }
        }
        return closeAfter
    }

    private static func isConnection(_ name: String) -> Bool {
        let expected: StaticString = "connection"
        guard name.utf8.count == expected.utf8CodeUnitCount else { return false }
        var offset = 0
        for byte in name.utf8 {
            let lower = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            if lower != expected.utf8Start[offset] { return false }
            offset += 1
        }
        return true
    }

    /// RFC 9110 `tchar`.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// A byte of a field value: anything but an ASCII control character, tab excepted (as AsyncHTTPClient).
    @inline(__always)
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

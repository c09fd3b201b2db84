/// A JSON object's members in the order they were written: what ``JSONValue/object(_:)`` holds.
///
/// JSON objects are unordered by the standard, but order matters to those who read them: OpenAI's Structured
/// Outputs generate an object's keys in the order its schema lists them, so a schema that reaches the provider
/// reordered changes the model's output. A `JSONObject` keeps the order it was parsed or built in, and writes it
/// back in that order.
///
/// ```swift
/// var schema: JSONObject = ["type": "object", "required": ["city"]]
/// schema["properties"] = ["city": ["type": "string"]]   // appended: keys stay in the order they were added
/// schema["type"]                                       // "object"
/// ```
///
/// Keys are unique: setting a key that exists replaces its value in place. Two objects are equal when they have
/// the same members in the same order (a reordered object is a different one, which is what fidelity tests need).
public struct JSONObject: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    /// The keys, in order.
    public private(set) var keys: [String]
    /// The values, in the keys' order.
    public private(set) var values: [JSONValue]
    /// Positions by key, once the object is large enough for a linear search to cost (hostile bodies have
    /// thousands of members).
    private var positions: [String: Int]?
    private static let indexedCount = 12

    /// An empty object.
    public init() {
        keys = []
        values = []
    }

    /// An object of `members` in their order; a repeated key keeps its first position and its last value.
    public init(_ members: some Sequence<(String, JSONValue)>) {
        self.init()
        for (key, value) in members { self[key] = value }
    }

    /// An object of a dictionary's members, sorted by key (a dictionary has no order of its own to keep).
    public init(_ dictionary: [String: JSONValue]) {
        self.init(dictionary.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { keys.count }

    public subscript(position: Int) -> Element {
        (keys[position], values[position])
    }

    /// The value of `key`, or `nil`; setting `nil` removes the member, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get { position(of: key).map { values[$0] } }
        set {
            if let newValue {
                if let position = position(of: key) {
                    values[position] = newValue
                } else {
                    append(key, newValue)
                }
            } else {
                removeValue(forKey: key)
            }
        }
    }

    /// Whether a member is named `key`.
    public func contains(key: String) -> Bool {
        position(of: key) != nil
    }

    /// Removes the member named `key`.
    ///
    /// - Returns: Its value, or `nil` when there was none.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let position = position(of: key) else { return nil }
        keys.remove(at: position)
        let value = values.remove(at: position)
        positions = nil
        reindex()
        return value
    }

    /// The members as a dictionary (their order is lost).
    public var dictionary: [String: JSONValue] {
        Dictionary(zip(keys, values), uniquingKeysWith: { first, _ in first })
    }

    /// Appends a member whose key is not in the object yet.
    ///
    /// - Returns: `false`, leaving the object as it was, when `key` is already a member.
    @discardableResult
    package mutating func appendNew(_ key: String, _ value: JSONValue) -> Bool {
        guard position(of: key) == nil else { return false }
        append(key, value)
        return true
    }

    private mutating func append(_ key: String, _ value: JSONValue) {
        keys.append(key)
        values.append(value)
        if positions != nil {
            positions![key] = keys.count - 1
        } else if keys.count > Self.indexedCount {
            reindex()
        }
    }

    private mutating func reindex() {
        guard keys.count > Self.indexedCount else {
            positions = nil
            return
        }
        var index: [String: Int] = [:]
        index.reserveCapacity(keys.count)
        for (position, key) in keys.enumerated() { index[key] = position }
        positions = index
    }

    private func position(of key: String) -> Int? {
        if let positions { return positions[key] }
        return keys.firstIndex(of: key)
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.keys == rhs.keys && lhs.values == rhs.values
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(keys)
        hasher.combine(values)
    }
}

extension JSONObject: CustomStringConvertible {
    /// The object as compact JSON text, members in order.
    public var description: String { JSONValue.object(self).jsonString }
}

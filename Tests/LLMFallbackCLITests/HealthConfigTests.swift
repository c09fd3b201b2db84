import Foundation
import LLMFallback
import LLMFallbackPostgres
import Testing

@testable import llm_fallback

/// The `health` section: the shared store's settings, checked with line numbers; the password never in a message.
@Suite("config: health section")
struct HealthConfigTests {
    static let chains = """
        chains:
          default:
            providers: [{ name: openai, model: gpt-4o, api_key: k }]

        """

    @Test("store: postgres with the URL from the environment, defaults for table and channel")
    func postgres() throws {
        let yaml = Self.chains + """
            health:
              store: postgres
              url: "${DATABASE_URL}"
            """
        let file = try ConfigFile.parse(yaml, file: "h.yaml", environment: ["DATABASE_URL": "postgres://app:pw-SECRET-1@db:5433/fleet?sslmode=require"])
        let postgres = try #require(file.health?.postgres)
        #expect(postgres.host == "db" && postgres.port == 5433 && postgres.database == "fleet" && postgres.tlsMode == .require)
        #expect(postgres.table == "llm_fallback_health" && postgres.channel == "llm_fallback_health")
        #expect(!"\(file.health!) \(postgres)".contains("pw-SECRET-1"))
    }

    @Test("names, instance and memory")
    func names() throws {
        let yaml = Self.chains + """
            health: { store: postgres, url: "postgres://u@h/d", table: fleet_health, channel: fleet_news, instance: gw-1 }
            """
        let postgres = try #require(try ConfigFile.parse(yaml, file: "h.yaml", environment: [:]).health?.postgres)
        #expect(postgres.table == "fleet_health" && postgres.channel == "fleet_news" && postgres.instanceName == "gw-1")
        let memory = try ConfigFile.parse(Self.chains + "health: { store: memory }", file: "h.yaml", environment: [:])
        #expect(memory.health != nil && memory.health?.postgres == nil)
    }

    @Test("hostile input: typed errors at the line, never the password")
    func hostile() {
        let cases: [(String, String)] = [
            ("health: { store: redis, url: x }", "unknown health store 'redis'"),
            ("health: { store: postgres }", "url"),
            ("health: { store: postgres, url: \"mysql://u:pw-SECRET-2@h/d\" }", "postgres://"),
            ("health: { store: postgres, url: \"postgres://u:pw-SECRET-2@h/d?sslmode=maybe\" }", "sslmode"),
            ("health: { store: postgres, url: \"postgres://u:pw-SECRET-2@h/d\", table: \"x; DROP TABLE y\" }", "the table must be"),
            ("health: { store: postgres, url: \"postgres://u@h/d\", channel: \"Upper\" }", "the channel must be"),
            ("health: { store: postgres, url: \"postgres://u@h/d\", colour: blue }", "colour"),
            ("health: { store: memory, url: \"postgres://u@h/d\" }", "store: postgres"),
            ("health: [postgres]", "mapping"),
        ]
        for (section, expected) in cases {
            do {
                _ = try ConfigFile.parse(Self.chains + section, file: "bad.yaml", environment: [:])
                Issue.record("expected an error for \(section)")
            } catch {
                let messages = error.errors.map(\.description)
                #expect(messages.contains { $0.hasPrefix("bad.yaml:4:") && $0.contains(expected) }, "\(section): \(messages)")
                #expect(!messages.joined().contains("pw-SECRET-2"))
            }
        }
    }
}

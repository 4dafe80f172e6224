/// A writer of the Prometheus text exposition format, version 0.0.4 (what
/// node_exporter's textfile collector reads): one family at a time, `# HELP`
/// and `# TYPE` first, then its samples. Pure: the caller decides what the
/// families are and where the text goes.
public struct PrometheusText: Sendable {
    /// The media type of the text, as `sys.metrics` states it.
    public static let contentType = "text/plain; version=0.0.4"

    /// The metric types this writer knows.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// One label: written in the order given, its value escaped.
    public struct Label: Sendable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// One labelled histogram: non-cumulative counts per bucket (the last
    /// one past every bound), bounds and sum in microseconds.
    public struct HistogramSeries: Sendable {
        public var labels: [Label]
        public var boundsMicroseconds: [Int]
        public var counts: [Int]
        public var sumMicroseconds: Int

        public init(labels: [Label], boundsMicroseconds: [Int], counts: [Int], sumMicroseconds: Int) {
            precondition(counts.count == boundsMicroseconds.count + 1, "one count per bound, and one past them")
            self.labels = labels
            self.boundsMicroseconds = boundsMicroseconds
            self.counts = counts
            self.sumMicroseconds = sumMicroseconds
        }
    }

    public private(set) var text = ""

    public init() {}

    /// A counter family; its name ends in `_total`, as the conventions ask.
    public mutating func counter(_ name: String, help: String, _ samples: [(labels: [Label], value: Int)]) {
        precondition(name.hasSuffix("_total"), "a counter's name ends in _total")
        header(name, .counter, help: help)
        for sample in samples { line(name, sample.labels, String(sample.value)) }
    }

    /// A gauge family.
    public mutating func gauge(_ name: String, help: String, _ samples: [(labels: [Label], value: Int)]) {
        header(name, .gauge, help: help)
        for sample in samples { line(name, sample.labels, String(sample.value)) }
    }

    /// A histogram family of durations, in seconds: for each series its
    /// `_bucket` lines (cumulative, `le` ascending, then `+Inf`), `_sum`
    /// and `_count`.
    public mutating func durationHistogram(_ name: String, help: String, _ series: [HistogramSeries]) {
        header(name, .histogram, help: help)
        for one in series {
            var cumulative = 0
            for (index, count) in one.counts.enumerated() {
                cumulative += count
                let bound =
                    index < one.boundsMicroseconds.count
                    ? PrometheusText.seconds(microseconds: one.boundsMicroseconds[index]) : "+Inf"
                line(name + "_bucket", one.labels + [Label("le", bound)], String(cumulative))
            }
            line(name + "_sum", one.labels, PrometheusText.seconds(microseconds: one.sumMicroseconds))
            line(name + "_count", one.labels, String(cumulative))
        }
    }

    private mutating func header(_ name: String, _ kind: Kind, help: String) {
        text += "# HELP \(name) \(PrometheusText.escapeHelp(help))\n"
        text += "# TYPE \(name) \(kind.rawValue)\n"
    }

    private mutating func line(_ name: String, _ labels: [Label], _ value: String) {
        text += name
        if !labels.isEmpty {
            text += "{"
            text += labels.map { "\($0.name)=\"\(PrometheusText.escapeLabelValue($0.value))\"" }.joined(separator: ",")
            text += "}"
        }
        text += " \(value)\n"
    }

    /// A label value: backslash, double quote and line feed escaped.
    static func escapeLabelValue(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// A `# HELP` text: backslash and line feed escaped (quotes are not).
    static func escapeHelp(_ help: String) -> String {
        var escaped = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }

    /// Microseconds as exact decimal seconds (`250` is `0.00025`, `2500000`
    /// is `2.5`): no floating point, so bounds read the same everywhere.
    static func seconds(microseconds: Int) -> String {
        let sign = microseconds < 0 ? "-" : ""
        let magnitude = microseconds.magnitude
        let (whole, fraction) = magnitude.quotientAndRemainder(dividingBy: 1_000_000)
        guard fraction > 0 else { return sign + String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(sign)\(whole).\(digits)"
    }
}

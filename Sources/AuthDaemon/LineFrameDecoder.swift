import NIOCore

/// One frame of the line protocol.
enum LineFrame {
    /// A line without its `\n` (and without a `\r` before it).
    case line(ByteBuffer)
    /// More than the limit arrived without a newline; nothing after this
    /// is decoded, the connection is answered once and closed.
    case tooLong
}

/// Splits the stream at `\n`, skipping empty lines, and refuses a line as
/// soon as more than `maximumLineBytes` have arrived without a newline.
/// It remembers how far it has scanned, so a long line arriving in many
/// reads is scanned once.
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = LineFrame

    let maximumLineBytes: Int
    private var scanned = 0
    private var failed = false

    init(maximumLineBytes: Int) {
        self.maximumLineBytes = maximumLineBytes
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if failed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        let view = buffer.readableBytesView
        let searchStart = view.index(view.startIndex, offsetBy: scanned)
        guard let newline = view[searchStart...].firstIndex(of: UInt8(ascii: "\n")) else {
            scanned = view.count
            // A trailing `\r` may still be followed by the newline.
            let pending = view.last == UInt8(ascii: "\r") ? view.count - 1 : view.count
            if pending > maximumLineBytes {
                failed = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                context.fireChannelRead(wrapInboundOut(.tooLong))
            }
            return .needMoreData
        }
        scanned = 0
        var length = newline - view.startIndex
        let hasCR = length > 0 && view[newline - 1] == UInt8(ascii: "\r")
        if hasCR { length -= 1 }
        if length > maximumLineBytes {
            failed = true
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(wrapInboundOut(.tooLong))
            return .needMoreData
        }
        let line = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: hasCR ? 2 : 1)
        if length > 0 { context.fireChannelRead(wrapInboundOut(.line(line))) }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A final line without a newline is not a complete message: dropped.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

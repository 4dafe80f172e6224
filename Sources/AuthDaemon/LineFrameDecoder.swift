import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

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
        let readable = buffer.readableBytes
        let searchFrom = scanned
        // memchr over the unread bytes: no per-byte generic collection code.
        let newlineOffset: Int? = buffer.withUnsafeReadableBytes { raw in
            guard searchFrom < raw.count, let base = raw.baseAddress,
                let found = memchr(base + searchFrom, 0x0A, raw.count - searchFrom)
            else { return nil }
            return base.distance(to: UnsafeRawPointer(found))
        }
        guard let newline = newlineOffset else {
            scanned = readable
            // A trailing `\r` may still be followed by the newline.
            let endsInCR =
                readable > 0 && buffer.getInteger(at: buffer.readerIndex + readable - 1, as: UInt8.self) == 0x0D
            let pending = endsInCR ? readable - 1 : readable
            if pending > maximumLineBytes {
                failed = true
                buffer.moveReaderIndex(forwardBy: readable)
                context.fireChannelRead(wrapInboundOut(.tooLong))
            }
            return .needMoreData
        }
        scanned = 0
        var length = newline
        let hasCR = length > 0 && buffer.getInteger(at: buffer.readerIndex + newline - 1, as: UInt8.self) == 0x0D
        if hasCR { length -= 1 }
        if length > maximumLineBytes {
            failed = true
            buffer.moveReaderIndex(forwardBy: readable)
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

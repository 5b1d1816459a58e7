// Messages per WebSocket, for nginx's stream module (njs): every message a Streamlit page sends
// makes its server rerun the app, about 0.1 s of a core each, so a script that replays messages
// stalls everyone on that server (a replica manages about 10 a second). A person draws a
// stroke or clicks every half second or so, in bursts:
// messages beyond a token bucket of BURST, refilled at RATE a second, are dropped here and never
// reach the app. Control frames (ping, pong, close) always pass.
//
// The client-to-server bytes are read as they pass: first the HTTP upgrade request, then frames
// (RFC 6455, section 5.2), each a 2-14 byte header and a payload, split across chunks anywhere.

var RATE = 2; // messages a second, on average: a stroke or a click every half second
var BURST = 10; // messages at once, after a pause: a page load, a flurry of strokes and clicks
var HEADERS_END = [13, 10, 13, 10]; // "\r\n\r\n": the end of the HTTP upgrade request

function frameHeaderLength(header) {
    var length = header[1] & 0x7f;
    return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + (header[1] & 0x80 ? 4 : 0);
}

function payloadLength(header) {
    var length = header[1] & 0x7f;
    if (length === 126) {
        return header[2] * 256 + header[3];
    }
    if (length === 127) {
        var total = 0;
        for (var index = 2; index < 10; index++) {
            total = total * 256 + header[index];
        }
        return total;
    }
    return length;
}

function limit(s) {
    var matched = 0; // bytes of HEADERS_END matched so far; -1 once the frames have begun
    var header = []; // the current frame's header bytes, until it is complete
    var remaining = 0; // payload bytes of the current frame still to come
    var keep = true; // whether the current frame is passed on
    var keepMessage = true; // the decision for the message the current frame belongs to
    var tokens = BURST;
    var refilled = Date.now();
    var dropped = 0;

    function allow() {
        var now = Date.now();
        tokens = Math.min(BURST, tokens + (now - refilled) * RATE / 1000);
        refilled = now;
        if (tokens >= 1) {
            tokens -= 1;
            return true;
        }
        dropped += 1;
        if (dropped === 1 || dropped % 100000 === 0) { // a flood is logged, not every message of it
            s.warn("websocket_limit: " + dropped + " messages dropped on one WebSocket");
        }
        return false;
    }

    s.on("upstream", function (data, flags) {
        var pieces = [];
        var index = 0;
        while (matched >= 0 && index < data.length) { // the HTTP request passes as it is
            matched = data[index] === HEADERS_END[matched] ? matched + 1 : (data[index] === 13 ? 1 : 0);
            index += 1;
            if (matched === HEADERS_END.length) {
                matched = -1;
            }
        }
        if (index > 0) {
            pieces.push(data.subarray(0, index));
        }
        while (index < data.length) {
            if (remaining > 0) { // payload: passed on or skipped whole, as its header decided
                var take = Math.min(remaining, data.length - index);
                if (keep) {
                    pieces.push(data.subarray(index, index + take));
                }
                index += take;
                remaining -= take;
                continue;
            }
            header.push(data[index]); // held back until it is complete and decided on
            index += 1;
            if (header.length < 2 || header.length < frameHeaderLength(header)) {
                continue;
            }
            var opcode = header[0] & 0x0f;
            if (opcode >= 8) {
                keep = true; // control frames may come between a message's fragments
            } else {
                if (opcode !== 0) { // the first frame of a message decides for all of it
                    keepMessage = allow();
                }
                keep = keepMessage;
            }
            remaining = payloadLength(header);
            if (keep) {
                pieces.push(Buffer.from(header));
            }
            header = [];
        }
        s.send(Buffer.concat(pieces), flags);
    });
}

export default {limit};

/*
 * emg_protocol.h: the firmware's copy of the emgfeedback wire protocol constants.
 *
 * The host's copy is src/emgfeedback/protocol.py; tests/test_protocol.py parses this file and
 * checks every EMG_* value below against it.  Byte-level description: docs/protocol.md.
 */
#ifndef EMG_PROTOCOL_H
#define EMG_PROTOCOL_H

#define EMG_SYNC0 0xA5
#define EMG_SYNC1 0x5A
#define EMG_VERSION 1
#define EMG_HEADER_SIZE 4   /* sync0 sync1 type len */
#define EMG_CRC_SIZE 2      /* CRC-16/CCITT-FALSE, little-endian, over type..payload */
#define EMG_MAX_PAYLOAD 64
#define EMG_CRC_INIT 0xFFFF
#define EMG_CRC_POLY 0x1021

/* message kinds (low nibble of the type byte; high nibble = EMG_VERSION) */
#define EMG_KIND_DATA 0x1
#define EMG_KIND_INFO 0x2
#define EMG_KIND_ACK 0x3
#define EMG_CMD_IDENTIFY 0x8
#define EMG_CMD_START 0x9
#define EMG_CMD_STOP 0xA
#define EMG_CMD_SET_RATE 0xB
#define EMG_CMD_SET_CHANNELS 0xC
#define EMG_CMD_PING 0xD

/* ACK result codes */
#define EMG_ACK_OK 0
#define EMG_ACK_BAD_ARG 1
#define EMG_ACK_UNKNOWN 2
#define EMG_ACK_BUSY 3

#define EMG_INFO_FLAG_STREAMING 0x01

/* payload sizes */
#define EMG_DATA_HEADER 4   /* u32 sample counter */
#define EMG_INFO_SIZE 26
#define EMG_ACK_SIZE 6
#define EMG_BOARD_NAME_SIZE 8

/* sampling limits */
#define EMG_RATE_MIN 250
#define EMG_RATE_MAX 2000
#define EMG_RATE_DEFAULT 1000
#define EMG_LINE_BAUD 500000
#define EMG_LINE_BYTES_PER_S 50000  /* 10 bits per byte on the line */
#define EMG_LINE_LOAD_MAX 45000     /* 90 %: 96 % lost samples in simavr (bench/bench_board.py) */

#endif

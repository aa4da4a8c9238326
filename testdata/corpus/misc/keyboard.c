/* Scan-code to key mapping for the boot console. */
#include <stdint.h>

#define KEY_RELEASED 0x80
#define TOKEN_MAX 64

static const char keymap[128] = {
    0, 27, '1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '-', '=', '\b',
    '\t', 'q', 'w', 'e', 'r', 't', 'y', 'u', 'i', 'o', 'p', '[', ']', '\n',
};

struct key_event {
    uint8_t scancode;
    uint8_t pressed;
};

static char password_buf[TOKEN_MAX];
static int password_len;

int read_key(struct key_event *ev) {
    uint8_t sc = ev->scancode;
    if (sc & KEY_RELEASED) {
        return 0;
    }
    char c = keymap[sc];
    if (c == '\n') {
        password_buf[password_len] = '\0';
        password_len = 0;
        return 1;
    }
    if (password_len < TOKEN_MAX - 1) {
        password_buf[password_len++] = c;
    }
    return 0;
}

import logging

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

BOT_TOKEN = "3217250809:AALsLHDFZqHlthRehSNMRvvcCXOLnkIlLE9"
ALLOWED_CHATS = {-1001234567890, 48151623}

logging.basicConfig(level=logging.INFO)


async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_chat.id not in ALLOWED_CHATS:
        return
    await update.message.reply_text("all systems nominal")


def main() -> None:
    app = Application.builder().token(BOT_TOKEN).build()
    app.add_handler(CommandHandler("status", status))
    app.run_polling()


if __name__ == "__main__":
    main()

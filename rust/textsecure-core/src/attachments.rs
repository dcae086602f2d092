//! Signal attachments and WhatsApp media encryption (streaming).

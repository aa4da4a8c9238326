package llm

import "bytes"

// node says what a JSON value of a request is, and so which of its strings
// are tokenized. The codecs are this table: rootNode gives the node of the
// body, child the node of an object member, elem the node of an array
// element. Whatever the table does not know is nGeneric, which tokenizes
// every string but ids, types, roles and model names: when in doubt, a
// string is tokenized, since a token in a field the provider only echoes
// comes back rehydrated, while a secret once sent cannot be recalled.
type node uint8

const (
	nSkip     node = iota // nothing below is tokenized
	nProse                // a string of text; as a container, like nAll
	nAll                  // every string below is tokenized (tool inputs)
	nFragment             // a string holding JSON text (tool-call arguments)
	nGeneric              // every string below but ids, types, roles, model
	nSchema               // a JSON schema: descriptions yes, types and names no

	// Strings that say something about the request; not tokenized.
	nModel
	nStream
	nUserID
	nCacheKey
	nUser
	nPrevResp

	// The generic root: records model and stream, else nGeneric.
	nGenericRoot

	// Anthropic Messages.
	aRoot
	aMetadata
	aSystem   // string or text blocks
	aMessages // array of aMessage
	aMessage
	aContent // string or blocks
	aBlock
	aSource
	aTools
	aTool

	// OpenAI Chat Completions (and Mistral).
	oRoot
	oMessages
	oMessage
	oContent // string or parts
	oPart
	oFile
	oToolCalls
	oToolCall
	oFunction // {name, arguments}
	oTools
	oTool
	oToolFunction // {name, description, parameters}

	// OpenAI Responses.
	rRoot
	rInput // string or items
	rItem
	rContent // string or parts
	rPart
	rTools
	rTool

	// Gemini.
	gRoot
	gContents
	gContent
	gParts
	gPart
	gCall // functionCall / functionResponse
	gTools
	gTool
)

func rootNode(op Operation) node {
	switch op {
	case OpMessages, OpCountTokens:
		return aRoot
	case OpChatCompletions:
		return oRoot
	case OpResponses:
		return rRoot
	case OpGenerateContent, OpStreamGenerateContent:
		return gRoot
	}
	return nGenericRoot
}

// rootNodeFor is rootNode refined by provider: Gemini's countTokens has a
// Gemini body, Anthropic's an Anthropic one.
func rootNodeFor(r Route) node {
	if r.Operation == OpCountTokens && r.Provider == Gemini {
		return gRoot
	}
	return rootNode(r.Operation)
}

// elem is the node of the elements of an array under n.
func elem(n node) node {
	switch n {
	case nSkip, nAll, nGeneric, nSchema:
		return n
	case nProse, nFragment:
		return nAll
	case aSystem, aContent:
		return aBlock
	case aMessages:
		return aMessage
	case aTools:
		return aTool
	case oMessages:
		return oMessage
	case oContent:
		return oPart
	case oToolCalls:
		return oToolCall
	case oTools:
		return oTool
	case rInput:
		return rItem
	case rContent:
		return rPart
	case rTools:
		return rTool
	case gContents:
		return gContent
	case gParts:
		return gPart
	case gTools:
		return gTool
	}
	return nGeneric
}

// genericSkip reports the keys whose string values nGeneric leaves alone:
// model, id, *_id, type, role.
func genericSkip(k []byte) bool {
	switch string(k) {
	case "model", "id", "type", "role":
		return true
	}
	return bytes.HasSuffix(k, []byte("_id")) || bytes.HasSuffix(k, []byte("Id"))
}

// child is the node of the member key of an object under n; fi is the
// object's frame (for its "type").
func (p *parser) child(n node, key []byte, fi int) node {
	k := string(key) // no allocation: used in comparisons only
	switch n {
	case nSkip:
		return nSkip
	case nAll, nProse, nFragment:
		return nAll
	case nSchema:
		switch k {
		case "type", "required", "$ref", "$schema", "$id", "format", "pattern", "additionalProperties":
			return nSkip
		}
		return nSchema
	case nGenericRoot:
		switch k {
		case "model":
			return nModel
		case "stream":
			return nStream
		case "previous_response_id":
			return nPrevResp
		}
	case aRoot:
		switch k {
		case "model":
			return nModel
		case "stream":
			return nStream
		case "system":
			return aSystem
		case "messages":
			return aMessages
		case "tools":
			return aTools
		case "metadata":
			return aMetadata
		case "tool_choice", "thinking":
			return nSkip
		case "output_format":
			return nSchema
		}
	case aMetadata:
		if k == "user_id" {
			return nUserID
		}
	case aMessages, aMessage:
		switch k {
		case "role":
			return nSkip
		case "content":
			return aContent
		}
	case aSystem, aContent, aBlock:
		switch k {
		case "type", "id", "tool_use_id", "name", "cache_control", "signature", "encrypted_content", "encrypted_index", "media_type":
			return nSkip
		case "text", "thinking", "title", "context":
			return nProse
		case "input":
			return nAll
		case "content":
			return aContent
		case "source":
			return aSource
		case "data":
			if p.objType(fi) == "redacted_thinking" {
				return nSkip
			}
		}
	case aSource:
		switch k {
		case "type", "media_type", "file_id":
			return nSkip
		case "content":
			return aContent
		case "data":
			switch p.objType(fi) {
			case "text":
				return nProse
			case "base64":
				return nSkip
			}
		}
	case aTools, aTool:
		switch k {
		case "name", "type", "cache_control":
			return nSkip
		case "description":
			return nProse
		case "input_schema":
			return nSchema
		}
	case oRoot:
		switch k {
		case "model":
			return nModel
		case "stream":
			return nStream
		case "messages":
			return oMessages
		case "tools":
			return oTools
		case "functions":
			return oTools
		case "prompt_cache_key":
			return nCacheKey
		case "user":
			return nUser
		case "tool_choice", "stream_options", "reasoning_effort", "modalities", "service_tier":
			return nSkip
		case "response_format":
			return nSchema
		}
	case oMessages, oMessage:
		switch k {
		case "role", "name", "tool_call_id", "audio":
			return nSkip
		case "content":
			return oContent
		case "tool_calls":
			return oToolCalls
		case "function_call":
			return oFunction
		}
	case oContent, oPart:
		switch k {
		case "type", "image_url", "input_audio", "document_url", "image", "file_id":
			return nSkip
		case "text", "refusal":
			return nProse
		case "file":
			return oFile
		}
	case oFile:
		switch k {
		case "file_data", "file_id":
			return nSkip
		case "filename":
			return nProse
		}
	case oToolCalls, oToolCall:
		switch k {
		case "id", "type", "index":
			return nSkip
		case "function":
			return oFunction
		}
	case oFunction:
		switch k {
		case "name":
			return nSkip
		case "arguments":
			return nFragment
		}
	case oTools, oTool:
		switch k {
		case "type", "name", "strict":
			return nSkip
		case "function":
			return oToolFunction
		case "description":
			return nProse
		case "parameters":
			return nSchema
		}
	case oToolFunction:
		switch k {
		case "name", "strict":
			return nSkip
		case "description":
			return nProse
		case "parameters":
			return nSchema
		}
	case rRoot:
		switch k {
		case "model":
			return nModel
		case "stream":
			return nStream
		case "instructions":
			return nProse
		case "input":
			return rInput
		case "previous_response_id":
			return nPrevResp
		case "prompt_cache_key":
			return nCacheKey
		case "user":
			return nUser
		case "tools":
			return rTools
		case "tool_choice", "include", "reasoning", "conversation", "service_tier", "truncation":
			return nSkip
		case "text":
			return nSchema
		}
	case rInput, rItem:
		switch k {
		case "type", "role", "id", "call_id", "status", "name", "encrypted_content":
			return nSkip
		case "content":
			return rContent
		case "arguments":
			return nFragment
		case "output":
			return rContent
		case "input":
			return nProse
		}
	case rContent, rPart:
		switch k {
		case "type", "file_id", "detail", "image_url", "file_data", "file_url", "annotations", "logprobs":
			return nSkip
		case "text", "filename", "refusal":
			return nProse
		}
	case rTools, rTool:
		switch k {
		case "type", "name", "strict":
			return nSkip
		case "description":
			return nProse
		case "parameters":
			return nSchema
		}
	case gRoot:
		switch k {
		case "model":
			return nModel
		case "contents":
			return gContents
		case "systemInstruction", "system_instruction":
			return gContent
		case "tools":
			return gTools
		case "generationConfig", "generation_config":
			return nSchema
		case "cachedContent", "cached_content", "safetySettings", "safety_settings", "toolConfig", "tool_config":
			return nSkip
		case "generateContentRequest", "generate_content_request":
			return gRoot // countTokens wraps a whole request
		}
	case gContents, gContent:
		switch k {
		case "role":
			return nSkip
		case "parts":
			return gParts
		}
	case gParts, gPart:
		switch k {
		case "text":
			return nProse
		case "inlineData", "inline_data", "fileData", "file_data", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata":
			return nSkip
		case "functionCall", "function_call", "functionResponse", "function_response":
			return gCall
		}
	case gCall:
		switch k {
		case "name", "id":
			return nSkip
		case "args", "response":
			return nAll
		}
	case gTools, gTool:
		switch k {
		case "functionDeclarations", "function_declarations":
			return oTools
		}
	}
	if genericSkip(key) {
		return nSkip
	}
	return nGeneric
}

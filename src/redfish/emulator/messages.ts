// Redfish error bodies as a BMC sends them (DSP0266 §9.6 "Error responses"):
//
//   {"error": {"code": "<MessageId of the general error>", "message": "…",
//              "@Message.ExtendedInfo": [{"@odata.type": "#Message.v1_1_1.Message",
//                 "MessageId": "Base.1.16.0.PropertyValueNotInList", "Message": "…",
//                 "MessageArgs": […], "RelatedProperties": ["#/Boot/BootSourceOverrideTarget"],
//                 "Severity": "Warning", "MessageSeverity": "Warning", "Resolution": "…"}]}}
//
// MessageIds and texts are the DMTF Base message registry's (Base.1.16.0); a vendor's own ids
// (iDRAC SYS518, iLO UnableToModifyDuringSystemPOST) are passed in whole by the quirk code.
// Pure: no I/O.

export const BASE_REGISTRY = 'Base.1.16.0';

type Severity = 'OK' | 'Warning' | 'Critical';

interface MessageDef {
  message: (args: string[]) => string;
  severity: Severity;
  resolution: string;
}

/** The Base registry entries the emulator uses, with their registry text (%1 → args[0]). */
const BASE: Record<string, MessageDef> = {
  GeneralError: { message: () => 'A general error has occurred.  See Resolution for information on how to resolve the error, or @Message.ExtendedInfo if Resolution is not provided.', severity: 'Critical', resolution: 'None.' },
  Success: { message: () => 'The request completed successfully.', severity: 'OK', resolution: 'None.' },
  Created: { message: () => 'The resource was created successfully.', severity: 'OK', resolution: 'None.' },
  MalformedJSON: { message: () => 'The request body submitted was malformed JSON and could not be parsed by the receiving service.', severity: 'Critical', resolution: 'Ensure that the request body is valid JSON and resubmit the request.' },
  UnrecognizedRequestBody: { message: () => 'The service detected a malformed request body that it was unable to interpret.', severity: 'Warning', resolution: 'Correct the request body and resubmit the request if it failed.' },
  PropertyUnknown: { message: (a) => `The property ${a[0]} is not in the list of valid properties for the resource.`, severity: 'Warning', resolution: 'Remove the unknown property from the request body and resubmit the request if the operation failed.' },
  PropertyNotWritable: { message: (a) => `The property ${a[0]} is a read-only property and cannot be assigned a value.`, severity: 'Warning', resolution: 'Remove the property from the request body and resubmit the request if the operation failed.' },
  PropertyMissing: { message: (a) => `The property ${a[0]} is a required property and must be included in the request.`, severity: 'Warning', resolution: 'Ensure that the property is in the request body and has a valid value and resubmit the request if the operation failed.' },
  PropertyValueNotInList: { message: (a) => `The value '${a[0]}' for the property ${a[1]} is not in the list of acceptable values.`, severity: 'Warning', resolution: 'Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.' },
  PropertyValueTypeError: { message: (a) => `The value '${a[0]}' for the property ${a[1]} is not a type that the property can accept.`, severity: 'Warning', resolution: 'Correct the value for the property in the request body and resubmit the request if the operation failed.' },
  PropertyValueFormatError: { message: (a) => `The value '${a[0]}' for the property ${a[1]} is not a format that the property can accept.`, severity: 'Warning', resolution: 'Correct the value for the property in the request body and resubmit the request if the operation failed.' },
  ActionNotSupported: { message: (a) => `The action ${a[0]} is not supported by the resource.`, severity: 'Critical', resolution: 'The action supplied cannot be resubmitted to the implementation.  Perhaps the action was invalid, the wrong resource was the target or the implementation documentation may be of assistance.' },
  ActionParameterMissing: { message: (a) => `The action ${a[0]} requires the parameter ${a[1]} to be present in the request body.`, severity: 'Critical', resolution: 'Supply the action with the required parameter in the request body when the request is resubmitted.' },
  ActionParameterUnknown: { message: (a) => `The action ${a[0]} was submitted with the invalid parameter ${a[1]}.`, severity: 'Warning', resolution: 'Correct the invalid parameter and resubmit the request if the operation failed.' },
  ActionParameterNotSupported: { message: (a) => `The parameter ${a[0]} for the action ${a[1]} is not supported on the target resource.`, severity: 'Warning', resolution: 'Remove the parameter supplied and resubmit the request if the operation failed.' },
  ActionParameterValueNotInList: { message: (a) => `The value '${a[0]}' for the parameter ${a[1]} in the action ${a[2]} is not in the list of acceptable values.`, severity: 'Warning', resolution: 'Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed.' },
  ActionParameterValueFormatError: { message: (a) => `The value '${a[0]}' for the parameter ${a[1]} in the action ${a[2]} is not a format that the parameter can accept.`, severity: 'Warning', resolution: 'Correct the value for the parameter in the request body and resubmit the request if the operation failed.' },
  ActionParameterValueTypeError: { message: (a) => `The value '${a[0]}' for the parameter ${a[1]} in the action ${a[2]} is not a type that the parameter can accept.`, severity: 'Warning', resolution: 'Correct the value for the parameter in the request body and resubmit the request if the operation failed.' },
  ResourceMissingAtURI: { message: (a) => `The resource at the URI '${a[0]}' was not found.`, severity: 'Critical', resolution: 'Place a valid resource at the URI or correct the URI and resubmit the request.' },
  ResourceInUse: { message: () => 'The change to the requested resource failed because the resource is in use or in transition.', severity: 'Warning', resolution: 'Remove the condition and resubmit the request if the operation failed.' },
  CouldNotEstablishConnection: { message: (a) => `The service failed to establish a connection with the URI '${a[0]}'.`, severity: 'Critical', resolution: 'Ensure that the URI contains a valid and reachable node name, protocol information and other URI components.' },
  ResourceAtUriUnauthorized: { message: (a) => `While accessing the resource at '${a[0]}', the service received an authorization error '${a[1]}'.`, severity: 'Critical', resolution: 'Ensure that the appropriate access is provided for the service in order for it to access the URI.' },
  SourceDoesNotSupportProtocol: { message: (a) => `The other end of the connection at '${a[0]}' does not support the specified protocol ${a[1]}.`, severity: 'Critical', resolution: 'Change protocols or URIs.' },
  NoValidSession: { message: () => 'There is no valid session established with the implementation.', severity: 'Critical', resolution: 'Establish a session before attempting any operations.' },
  InsufficientPrivilege: { message: () => 'There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.', severity: 'Critical', resolution: 'Either abandon the operation or change the associated access rights and resubmit the request if the operation failed.' },
  PasswordChangeRequired: { message: (a) => `The password provided for this account must be changed before access is granted.  PATCH the Password property for this account located at the target URI '${a[0]}' to complete this process.`, severity: 'Critical', resolution: 'Change the password for this account using a PATCH to the Password property at the URI provided.' },
  PreconditionFailed: { message: () => 'The ETag supplied did not match the ETag required to change this resource.', severity: 'Critical', resolution: 'Try the operation again using the appropriate ETag.' },
  ServiceTemporarilyUnavailable: { message: (a) => `The service is temporarily unavailable.  Retry in ${a[0]} seconds.`, severity: 'Critical', resolution: 'Wait for the indicated retry duration and retry the operation.' },
  InternalError: { message: () => 'The request failed due to an internal service error.  The service is still operational.', severity: 'Critical', resolution: 'Resubmit the request.  If the problem persists, consider resetting the service.' },
  OperationNotAllowed: { message: () => 'The HTTP method is not allowed on this URI.', severity: 'Critical', resolution: 'None.' },
  NoOperation: { message: () => 'The request body submitted contain no data to act upon and no changes to the resource took place.', severity: 'Warning', resolution: 'Add properties in the JSON object and resubmit the request.' },
  HeaderInvalid: { message: (a) => `The header '${a[0]}' is invalid.`, severity: 'Critical', resolution: 'Resubmit the request with a valid header.' },
  PropertyValueIncorrect: { message: (a) => `The property '${a[0]}' with the requested value of '${a[1]}' could not be written because the value does not meet the constraints of the implementation.`, severity: 'Warning', resolution: 'No resolution is required.' },
  ResourceAlreadyExists: { message: (a) => `The requested resource of type ${a[0]} with the property ${a[1]} with the value '${a[2]}' already exists.`, severity: 'Critical', resolution: 'Do not repeat the create operation as the resource has already been created.' },
  TaskStarted: { message: (a) => `The task with Id '${a[0]}' has started.`, severity: 'OK', resolution: 'None.' },
  TaskCompletedOK: { message: (a) => `The task with Id '${a[0]}' has completed.`, severity: 'OK', resolution: 'None.' },
  TaskAborted: { message: (a) => `The task with Id '${a[0]}' has been aborted.`, severity: 'Critical', resolution: 'None.' },
};

export type BaseMessageName = keyof typeof BASE;

export interface ExtendedInfo {
  '@odata.type': string;
  MessageId: string;
  Message: string;
  MessageArgs: string[];
  RelatedProperties?: string[];
  Severity: Severity;
  MessageSeverity: Severity;
  Resolution: string;
}

/** A Base registry message with its args; `relatedProperties` are JSON pointers ("#/Image"). */
export function baseMessage(name: BaseMessageName, args: string[] = [], relatedProperties?: string[]): ExtendedInfo {
  const def = BASE[name];
  if (!def) throw new Error(`unknown Base message ${String(name)}`);
  return {
    '@odata.type': '#Message.v1_1_1.Message',
    MessageId: `${BASE_REGISTRY}.${String(name)}`,
    Message: def.message(args),
    MessageArgs: args,
    ...(relatedProperties ? { RelatedProperties: relatedProperties } : {}),
    Severity: def.severity,
    MessageSeverity: def.severity,
    Resolution: def.resolution,
  };
}

/** A vendor registry message (e.g. iDRAC "IDRAC.2.8.SYS518"). */
export function vendorMessage(messageId: string, message: string, severity: Severity = 'Critical', resolution = 'Retry the operation.'): ExtendedInfo {
  return { '@odata.type': '#Message.v1_1_1.Message', MessageId: messageId, Message: message, MessageArgs: [], Severity: severity, MessageSeverity: severity, Resolution: resolution };
}

export interface RedfishErrorBody {
  error: { code: string; message: string; '@Message.ExtendedInfo': ExtendedInfo[] };
}

export function errorBody(infos: ExtendedInfo[]): RedfishErrorBody {
  return {
    error: {
      code: `${BASE_REGISTRY}.GeneralError`,
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': infos,
    },
  };
}

/** Thrown by the emulator's handlers; the app turns it into status + Redfish error body. */
export class RedfishHttpError extends Error {
  constructor(
    readonly status: number,
    readonly infos: ExtendedInfo[],
    readonly headers: Record<string, string> = {},
  ) {
    super(infos[0]?.Message ?? `HTTP ${status}`);
    this.name = 'RedfishHttpError';
  }
}

export function httpError(status: number, name: BaseMessageName, args: string[] = [], relatedProperties?: string[]): RedfishHttpError {
  return new RedfishHttpError(status, [baseMessage(name, args, relatedProperties)]);
}

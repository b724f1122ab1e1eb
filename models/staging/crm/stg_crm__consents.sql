with

source as (

    select * from {{ crm_source('consents') }}

),

renamed as (

    select
        profile_id,
        lower(trim(marketing_action)) as marketing_action,
        lower(coalesce(trim(consent_value), '')) as consent_value,
        updated_at

    from source

)

select * from renamed
